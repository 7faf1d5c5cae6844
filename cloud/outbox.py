"""The collector's outgoing messages: alerts, replies, notices, updates. Rows of
``alert_outbox``, written in the transaction that decided them and published by the
collector's publisher thread (``cloud.publisher``) in the order of their ``seq``."""

from __future__ import annotations

import time

from cloud.db.base import Conn, Db


def queue_message(conn: Conn, topic: str, payload: str, now: float, retain: bool = False) -> None:
    """Queue one message; an empty retained payload clears what the broker retains there."""
    # under the lock, so outbox rows commit in the order of their seq (the publisher reads
    # past the last seq it sent)
    conn.lock("alerts")
    conn.execute(
        "INSERT INTO alert_outbox (topic, payload, retain, created) VALUES (?, ?, ?, ?)",
        (topic, payload, int(retain), now),
    )


class Outgoing:
    """The queue as the publisher reads it, and the leases that elect, among collectors that
    share a database, the one that publishes it (and the one that posts to bots)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def pending(self, after: int, limit: int) -> list[tuple[int, str, str, int]]:
        rows = self.db.query(
            "SELECT seq, topic, payload, retain FROM alert_outbox WHERE sent IS NULL AND "
            "seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [(r["seq"], r["topic"], r["payload"], r["retain"]) for r in rows]

    def mark_sent(self, seqs: list[int]) -> None:
        now = time.time()
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE alert_outbox SET sent = ? WHERE seq = ?", ((now, s) for s in seqs)
            )
            conn.execute("DELETE FROM alert_outbox WHERE sent < ?", (now - 86400,))

    def hold_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl_s`` unless another holder has it still;
        when its holder stops renewing, another takes over after ``ttl_s``."""
        now = time.time()
        with self.db.tx(locks=[f"lease:{name}"]) as conn:
            row = conn.execute(
                "SELECT holder, until FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] != holder and row[1] > now:
                return False
            conn.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET holder = excluded.holder, until = excluded.until",
                (name, holder, now + ttl_s),
            )
            return True
