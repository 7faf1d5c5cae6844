"""The collector's SQLite store: events stored once each, devices, sequence ranges, dead letters.

Writes come in batches (one transaction for many MQTT messages) and the collector acknowledges
the messages to the broker only after the commit, so a killed collector loses nothing: the
broker sends the unacknowledged messages again and ``INSERT OR IGNORE`` on the event id absorbs
them. Each device's received sequence numbers are kept as merged ranges; the holes between
them are the gaps.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloud.alerts import tables
from cloud.alerts.engine import AlertEngine
from cloud.alerts.store import AlertTables
from shared.models import Envelope, Status
from shared.sqlite import Transaction, open_db

log = logging.getLogger("shian.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    site TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device_seq ON events(device, seq);
CREATE INDEX IF NOT EXISTS events_received ON events(received);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'unknown',
    state_reason TEXT NOT NULL DEFAULT '',
    state_changed REAL,
    last_status TEXT,
    last_seen REAL,
    events INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS seq_ranges (
    device TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    PRIMARY KEY (device, lo)
);
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    event_id TEXT NOT NULL,
    data TEXT NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    device TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    received REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deadletters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL,
    received REAL NOT NULL
);
"""

DEADLETTER_KEEP_BYTES = 256 * 1024
"""Raw bytes kept of one dead letter (an oversize payload is cut here; its reason says so)."""


@dataclass
class DeadLetter:
    topic: str
    payload: bytes
    reason: str


@dataclass
class Snapshot:
    device: str
    id: str
    data: bytes


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    deadletters: int = 0
    new_gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)


def merge_ranges(ranges: list[tuple[int, int]], seqs: list[int]) -> list[tuple[int, int]]:
    """Merge sequence numbers into sorted, non-overlapping, non-adjacent ranges."""
    items = sorted(ranges + [(s, s) for s in seqs])
    out: list[tuple[int, int]] = []
    for lo, hi in items:
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def holes(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Missing sequence numbers (inclusive ranges), from 1 to the highest received."""
    out = []
    prev = 0
    for lo, hi in ranges:
        if lo > prev + 1:
            out.append((prev + 1, lo - 1))
        prev = hi
    return out


class Store(AlertTables):
    """Thread-safe: one connection behind a lock (the writer thread and the CLI readers)."""

    def __init__(
        self, path: Path | str, snapshots_dir: Path | None = None, engine: AlertEngine | None = None
    ) -> None:
        self.snapshots_dir = snapshots_dir or Path(path).parent / "snapshots"
        self.engine = engine
        self.db = open_db(path)
        self.db.conn.executescript(SCHEMA)
        tables.create(self.db.conn)
        self._lock = threading.Lock()

    def write(
        self,
        events: list[Envelope],
        statuses: list[Status],
        deadletters: list[DeadLetter],
        snapshots: list[Snapshot] | None = None,
        received: float | None = None,
        commands: list[tuple[str, bytes]] | None = None,
    ) -> WriteResult:
        """Store one batch in one transaction (snapshot files are written, fsynced, before)."""
        now = received if received is not None else time.time()
        res = WriteResult(deadletters=len(deadletters))
        files = [(s, self._write_file(s)) for s in snapshots or []]
        with self._lock, Transaction(self.db) as conn:
            by_device: dict[str, list[Envelope]] = {}
            for env in events:
                by_device.setdefault(env.device, []).append(env)
            new_events = self._new(conn, events)
            for device, envs in by_device.items():
                self._touch_device(conn, device, envs[-1].site, now)
                cur = conn.executemany(
                    "INSERT OR IGNORE INTO events (id, device, site, seq, ts, kind, data, received)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (
                        (
                            str(e.id),
                            e.device,
                            e.site,
                            e.seq,
                            e.ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                            e.kind,
                            json.dumps(e.data, ensure_ascii=False, separators=(",", ":")),
                            now,
                        )
                        for e in envs
                    ),
                )
                inserted = cur.rowcount
                conn.executemany(
                    "INSERT OR IGNORE INTO tickets (ticket_id, device, event_id, data, received)"
                    " VALUES (?,?,?,?,?)",
                    (
                        (
                            e.data["ticket_id"],
                            e.device,
                            str(e.id),
                            json.dumps(e.data, ensure_ascii=False),
                            now,
                        )
                        for e in envs
                        if e.kind == "ticket"
                    ),
                )
                dup = len(envs) - inserted
                res.inserted += inserted
                res.duplicates += dup
                new = self._ranges(conn, device, [e.seq for e in envs])
                if new:
                    res.new_gaps[device] = new
                conn.execute(
                    "UPDATE devices SET events = events + ?, duplicates = duplicates + ?,"
                    " max_seq = max(max_seq, ?) WHERE device = ?",
                    (inserted, dup, max(e.seq for e in envs), device),
                )
            changed: list[Status] = []  # what the alert engine needs: a change of state
            for st in statuses:
                before = conn.execute(
                    "SELECT state, state_reason FROM devices WHERE device = ?", (st.device,)
                ).fetchone()
                if (
                    before is None
                    or (before[0], before[1]) != (st.state, st.reason)
                    or st.outbox is not None
                ):
                    changed.append(st)
                self._touch_device(conn, st.device, st.site, now)
                conn.execute(
                    "UPDATE devices SET last_status = ?, state_reason = ?,"
                    " state_changed = CASE WHEN state = ? THEN state_changed ELSE ? END,"
                    " state = ? WHERE device = ?",
                    (
                        st.model_dump_json(exclude_none=True),
                        st.reason,
                        st.state,
                        now,
                        st.state,
                        st.device,
                    ),
                )
            conn.executemany(
                "INSERT OR REPLACE INTO snapshots (id, device, path, size, received)"
                " VALUES (?,?,?,?,?)",
                ((s.id, s.device, str(p), len(s.data), now) for s, p in files),
            )
            conn.executemany(
                "INSERT INTO deadletters (topic, payload, reason, received) VALUES (?,?,?,?)",
                ((d.topic, d.payload[:DEADLETTER_KEEP_BYTES], d.reason, now) for d in deadletters),
            )
            if self.engine is not None:
                self.engine.on_batch(conn, new_events, changed, now)
                for supervisor, payload in commands or []:
                    self.engine.command(conn, now, supervisor, payload)
        for device, gaps in res.new_gaps.items():
            log.warning("device %s: sequence gap(s) %s", device, gaps)
        return res

    @staticmethod
    def _new(conn: Any, events: list[Envelope]) -> list[Envelope]:
        """The events of a batch not stored before (a redelivery raises no alert twice)."""
        if not events:
            return []
        ids = [str(e.id) for e in events]
        seen: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            seen.update(
                r[0] for r in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
            )
        fresh: dict[str, Envelope] = {}
        for e in events:
            if str(e.id) not in seen:
                fresh.setdefault(str(e.id), e)
        return list(fresh.values())

    def in_transaction(self, fn: Any) -> Any:
        """Run ``fn(conn)`` in one write transaction (the alert engine's ticks and actions)."""
        with self._lock, Transaction(self.db) as conn:
            return fn(conn)

    def _write_file(self, s: Snapshot) -> Path:
        folder = self.snapshots_dir / s.device
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{s.id}.jpg"
        tmp = path.with_suffix(".part")
        with tmp.open("wb") as f:
            f.write(s.data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    def snapshot(self, snap_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM snapshots WHERE id = ?", (snap_id,))
        return rows[0] if rows else None

    @staticmethod
    def _touch_device(conn: Any, device: str, site: str, now: float) -> None:
        conn.execute(
            "INSERT INTO devices (device, site, last_seen) VALUES (?,?,?) "
            "ON CONFLICT(device) DO UPDATE SET site = excluded.site,"
            " last_seen = excluded.last_seen",
            (device, site, now),
        )

    @staticmethod
    def _ranges(conn: Any, device: str, seqs: list[int]) -> list[tuple[int, int]]:
        """Add seqs to the device's ranges; return holes that did not exist before."""
        old = [
            (lo, hi)
            for lo, hi in conn.execute(
                "SELECT lo, hi FROM seq_ranges WHERE device = ? ORDER BY lo", (device,)
            )
        ]
        new = merge_ranges(old, seqs)
        if new == old:
            return []
        conn.execute("DELETE FROM seq_ranges WHERE device = ?", (device,))
        conn.executemany(
            "INSERT INTO seq_ranges (device, lo, hi) VALUES (?,?,?)",
            ((device, lo, hi) for lo, hi in new),
        )
        before = set(holes(old))
        return [h for h in holes(new) if h not in before and h[1] > (old[-1][1] if old else 0)]

    # -- reading -----------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def events(
        self, device: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        where, params = [], []
        if device:
            where.append("device = ?")
            params.append(device)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received DESC, device, seq DESC LIMIT ?"
        rows = self._rows(sql, (*params, limit))
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows

    def count_events(self) -> int:
        with self._lock:
            (n,) = self.db.conn.execute("SELECT count(*) FROM events").fetchone()
        return int(n)

    def devices(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM devices ORDER BY device")
        ranges: dict[str, list[tuple[int, int]]] = {}
        for r in self._rows("SELECT device, lo, hi FROM seq_ranges ORDER BY device, lo"):
            ranges.setdefault(r["device"], []).append((r["lo"], r["hi"]))
        for r in rows:
            gaps = holes(ranges.get(r["device"], []))
            r["gaps"] = [list(g) for g in gaps]
            r["missing"] = sum(hi - lo + 1 for lo, hi in gaps)
            r["last_status"] = json.loads(r["last_status"]) if r["last_status"] else None
        return rows

    def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,))
        if not rows:
            return None
        row = rows[0]
        row["data"] = json.loads(row["data"])
        return row

    def deadletters(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM deadletters ORDER BY id DESC LIMIT ?", (limit,))

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
