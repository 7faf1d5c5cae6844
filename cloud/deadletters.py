"""Dead letters: what was refused, with the reason, kept for the operator to read.

It owns the ``deadletters`` table. The same bytes on the same topic are one dead letter with
a count of repeats (``digest``): a broken or hostile box that sends its message again and
again, or a broker that redelivers one, adds a count, not a row. The table is bounded by age
and by rows (``[evidence]``), so nothing a box sends can fill the cloud's disk.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from cloud.batch import DeadLetter
from cloud.config import EvidenceSettings
from cloud.db import Conn, Db

KEEP_BYTES = 256 * 1024
"""Raw bytes kept of one dead letter (an oversize payload is cut here; its reason says so)."""


def digest(topic: str, payload: bytes) -> str:
    return hashlib.sha256(topic.encode("utf-8", "replace") + b"\0" + payload).hexdigest()[:32]


class DeadLetters:
    def __init__(self, db: Db, settings: EvidenceSettings | None = None) -> None:
        self.db = db
        self.settings = settings or EvidenceSettings()

    @staticmethod
    def add(conn: Conn, dead: list[DeadLetter], now: float) -> None:
        """Store a batch's dead letters (in the batch's transaction)."""
        rows: dict[str, list[Any]] = {}
        for d in dead:
            key = digest(d.topic, d.payload)
            if key in rows:
                rows[key][5] += 1  # the same message twice in one batch
            else:
                rows[key] = [d.topic, d.payload[:KEEP_BYTES], d.reason, now, key, 0, now]
        conn.executemany(
            "INSERT INTO deadletters (topic, payload, reason, received, digest, repeats,"
            " last_received) VALUES (?,?,?,?,?,?,?) ON CONFLICT (digest) DO UPDATE SET"
            " repeats = deadletters.repeats + excluded.repeats + 1,"
            " last_received = excluded.last_received, reason = excluded.reason",
            list(rows.values()),
        )

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.db.query(
            "SELECT * FROM deadletters ORDER BY coalesce(last_received, received) DESC, id DESC"
            " LIMIT ?",
            (limit,),
        )

    def prune(self, now: float | None = None) -> int:
        """Delete dead letters past their age, then the oldest beyond the row limit."""
        s = self.settings
        now = time.time() if now is None else now
        with self.db.tx(locks=["deadletters"]) as conn:
            cur = conn.execute(
                "DELETE FROM deadletters WHERE coalesce(last_received, received) < ?",
                (now - s.deadletters_keep_days * 86400,),
            )
            n = max(cur.rowcount, 0)
            row = conn.execute(
                "SELECT id FROM deadletters ORDER BY id DESC LIMIT 1 OFFSET ?",
                (s.deadletters_max,),
            ).fetchone()
            if row is not None:
                cur = conn.execute("DELETE FROM deadletters WHERE id <= ?", (row[0],))
                n += max(cur.rowcount, 0)
        return n
