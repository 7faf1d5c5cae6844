"""The snapshot queue: evidence JPEGs waiting to be sent on ``.../snap/{id}``.

Rows live in the box database beside the outbox, written in the same transaction as the
violation event that names them. Like events, a snapshot is delivered on PUBACK and confirmed
when the collector's ``cmd/ack`` lists it; unconfirmed ones are sent again in the next session.
A snapshot whose file is gone (deleted by the evidence quota before it could be sent) is dropped
and counted.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from edge.store.outbox import Outbox


@dataclass(frozen=True)
class PendingSnapshot:
    id: str
    path: Path


class SnapshotQueue:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.counters = {"snapshots_sent": 0, "snapshots_confirmed": 0, "snapshots_lost": 0}

    def add(self, conn: sqlite3.Connection, snap_id: str, path: Path, size: int) -> None:
        """Inside the transaction that queues the violation (``Outbox.enqueue_many(also=)``)."""
        conn.execute(
            "INSERT OR IGNORE INTO snapshots (id, path, size, created) VALUES (?,?,?,?)",
            (snap_id, str(path), size, self.outbox.clock()),
        )

    def pending(self, after_id: str = "", limit: int = 4) -> list[PendingSnapshot]:
        rows = self.outbox.read(
            "SELECT id, path FROM snapshots WHERE confirmed IS NULL AND id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [PendingSnapshot(i, Path(p)) for i, p in rows]

    def read(self, snap: PendingSnapshot) -> bytes | None:
        try:
            return snap.path.read_bytes()
        except OSError:
            with self.outbox.transaction() as conn:
                conn.execute("DELETE FROM snapshots WHERE id = ?", (snap.id,))
            self.counters["snapshots_lost"] += 1
            return None

    def mark_delivered(self, snap_id: str) -> None:
        with self.outbox.transaction() as conn:
            conn.execute(
                "UPDATE snapshots SET delivered = ? WHERE id = ? AND delivered IS NULL",
                (self.outbox.clock(), snap_id),
            )
        self.counters["snapshots_sent"] += 1

    def mark_confirmed(self, ids: list[str]) -> None:
        now = self.outbox.clock()
        with self.outbox.transaction() as conn:
            for snap_id in ids:
                n = conn.execute(
                    "UPDATE snapshots SET confirmed = ? WHERE id = ? AND confirmed IS NULL",
                    (now, snap_id),
                ).rowcount
                self.counters["snapshots_confirmed"] += n

    def depth(self) -> int:
        return int(self.outbox.read("SELECT count(*) FROM snapshots WHERE confirmed IS NULL")[0][0])
