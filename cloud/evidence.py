"""Evidence: the snapshots boxes send (violations, rectification photos), kept as files.

It owns the ``snapshots`` table and its folder. A snapshot id belongs to the device that sent
it first: the same device sending it again is a duplicate (the first file stays), another
device sending that id is refused (``snapshot_conflict``), so no box can replace another's
evidence. Files are written and fsynced before the row commits; a file without a row (a crash
in between) is harmless, a row never points to a file that was not complete.

Evidence is kept within a quota per device and in total and for a set time (``[evidence]``),
the oldest deleted first, never the evidence of an alert still open (``alert_evidence``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.batch import DeadLetter, Snapshot
from cloud.config import EvidenceSettings
from cloud.db import Conn, Db
from cloud.ranges import select_in
from shared.ids import uuid7

log = logging.getLogger("shian.evidence")

PINNED = (
    "SELECT e.snapshot FROM alert_evidence e JOIN alerts a ON a.id = e.alert"
    " WHERE a.state != 'closed'"
    " UNION SELECT snapshot FROM alerts WHERE state != 'closed' AND snapshot IS NOT NULL"
)
"""Snapshots an open alert needs: never deleted."""


@dataclass
class Prepared:
    """A batch's snapshots after the owner check: files written for the new ones."""

    new: list[tuple[Snapshot, Path]]
    again: list[Snapshot]


def _conflict(s: Snapshot, owner: str) -> DeadLetter:
    return s.refused(f"snapshot_conflict: snapshot {s.id} belongs to {owner}")


class Evidence:
    def __init__(self, db: Db, folder: Path, settings: EvidenceSettings | None = None) -> None:
        self.db, self.folder = db, folder
        self.settings = settings or EvidenceSettings()

    def _owners(self, conn: Conn, ids: list[str]) -> dict[str, str]:
        return dict(select_in(conn, "SELECT id, device FROM snapshots", "id", ids))

    def prepare(self, snaps: list[Snapshot], dead: list[DeadLetter]) -> Prepared:
        """Check owners and write the files of new snapshots (before the transaction)."""
        out = Prepared([], [])
        if not snaps:
            return out
        with self.db.tx() as conn:
            owners = self._owners(conn, [s.id for s in snaps])
        for s in snaps:
            owner = owners.get(s.id)
            if owner is None:  # new: the first device to send an id owns it
                owners[s.id] = s.device
                out.new.append((s, self._write_file(s)))
            elif owner != s.device:
                dead.append(_conflict(s, owner))
            else:  # stored before, or twice in this batch: the first file stays
                out.again.append(s)
        return out

    def record(
        self, conn: Conn, prepared: Prepared, now: float, dead: list[DeadLetter]
    ) -> list[Snapshot]:
        """Insert the new rows in the batch's transaction; return every snapshot now held for
        its sender. One taken meanwhile by another device (another collector) is refused."""
        if not prepared.new:
            return list(prepared.again)
        conn.executemany(
            "INSERT INTO snapshots (id, device, path, size, received) VALUES (?,?,?,?,?)"
            " ON CONFLICT (id) DO NOTHING",
            [(s.id, s.device, str(p), len(s.data), now) for s, p in prepared.new],
        )
        owners = self._owners(conn, [s.id for s, _ in prepared.new])
        held = list(prepared.again)
        for s, path in prepared.new:
            if owners.get(s.id) == s.device:
                held.append(s)
            else:
                dead.append(_conflict(s, owners.get(s.id, "?")))
                with contextlib.suppress(OSError):
                    path.unlink()
        return held

    def _write_file(self, s: Snapshot) -> Path:
        folder = self.folder / s.device
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{s.id}.jpg"
        tmp = path.with_suffix(".part")
        with tmp.open("wb") as f:
            f.write(s.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def add_photo(self, owner: str, data: bytes, now: float) -> str:
        """Keep an officer's photo (checked by the caller) as a snapshot of ``owner``; its id.
        Kept and pruned like a box's evidence; a hazard's or a verification's photos are
        pinned by their alert."""
        snap = Snapshot(owner, str(uuid7()), data)
        path = self._write_file(snap)
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO snapshots (id, device, path, size, received) VALUES (?,?,?,?,?)",
                (snap.id, owner, str(path), len(data), now),
            )
        return snap.id

    @staticmethod
    def owned(conn: Conn, owner: str, ids: list[str]) -> list[str]:
        """Those of ``ids`` that are snapshots of ``owner`` (a form names only its own)."""
        rows = select_in(conn, "SELECT id, device FROM snapshots", "id", ids)
        mine = {snap_id for snap_id, device in rows if device == owner}
        return [i for i in ids if i in mine]

    def get(self, snap_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM snapshots WHERE id = ?", (snap_id,))
        return rows[0] if rows else None

    @staticmethod
    def pin(conn: Conn, alert_id: str, snap_id: str | None) -> None:
        """Keep ``snap_id`` while the alert is open (the alert engine calls this)."""
        if snap_id:
            conn.execute(
                "INSERT INTO alert_evidence (alert, snapshot) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (alert_id, snap_id),
            )

    # -- retention -------------------------------------------------------------------------------
    def prune(self, now: float | None = None) -> int:
        """Apply the age limit, then each device's quota, then the total; oldest first, pinned
        evidence never. Returns how many snapshots were deleted."""
        s = self.settings
        now = time.time() if now is None else now
        cols = "SELECT id, device, path, size FROM snapshots"
        gone: dict[str, tuple[str, str, int]] = {}
        with self.db.tx(locks=["evidence"]) as conn:
            pinned = {r[0] for r in conn.execute(PINNED).fetchall()}

            def drop(rows: list[Any], over: float) -> None:
                for snap_id, device, path, size in rows:
                    if over <= 0:
                        return
                    if snap_id not in pinned and snap_id not in gone:
                        gone[snap_id] = (device, path, size)
                        over -= size

            cutoff = now - s.keep_days * 86400
            drop(conn.execute(f"{cols} WHERE received < ?", (cutoff,)).fetchall(), float("inf"))
            usage = {
                device: int(used)  # PostgreSQL's sum is a numeric
                for device, used in conn.execute(
                    "SELECT device, sum(size) FROM snapshots GROUP BY device"
                )
            }
            aged: dict[str, int] = {}
            for device, _, size in gone.values():
                aged[device] = aged.get(device, 0) + size
            for device, used in usage.items():
                left = used - aged.get(device, 0)
                if left > s.max_mb_per_device * 1e6:
                    rows = conn.execute(
                        f"{cols} WHERE device = ? ORDER BY received, id", (device,)
                    ).fetchall()
                    drop(rows, left - s.max_mb_per_device * 1e6)
            left = sum(usage.values()) - sum(g[2] for g in gone.values())
            if left > s.max_gb_total * 1e9:
                rows = conn.execute(f"{cols} ORDER BY received, id").fetchall()
                drop(rows, left - s.max_gb_total * 1e9)
            conn.executemany("DELETE FROM snapshots WHERE id = ?", [(i,) for i in gone])
        for _, path, _ in gone.values():
            with contextlib.suppress(OSError):
                Path(path).unlink()
        if gone:
            log.info("evidence: %d snapshot(s) deleted by quota or age", len(gone))
        return len(gone)
