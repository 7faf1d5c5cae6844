"""The edge outbox: every event is committed here (durably) before anything sends it.

One SQLite file in WAL mode, shared by the agent and by other processes on the box (the
``shian-edge emit`` command). The sequence number comes from ``AUTOINCREMENT`` inside the same
write transaction as the row, so a number is never reused, even after rows are deleted or the
box loses power. Triggers keep the undelivered count and bytes in ``stats`` whatever process
writes, so bounds are checked without scanning the table.

A full disk is a state, not a crash: a refused event is counted (in memory while nothing can be
written, then in ``stats`` with the next write that succeeds) and ``disk_full`` says so in the
heartbeat; what is already queued is still read and sent, and confirmed rows are pruned at
once. The write-ahead log is bounded (``wal_max_bytes``; by default SQLite lets it grow to
about 4 MB before a checkpoint), and a reserve of space (``edge.store.reserve``) is given up
when the disk is full so that the database opens and keeps its books.

A row moves through two marks. ``delivered``: the broker's PUBACK for the message carrying it
arrived. ``confirmed``: the collector has committed it and said so on the device's ``cmd/ack``
topic. Only confirmation ends the row's life (pruned after ``keep_confirmed_s``): a PUBACK
proves the broker had the message, not that the cloud stored it (a broker restarted without
persistence forgets messages it acknowledged but had nobody to deliver to). Bounds count the
unconfirmed rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from edge.config import OutboxSettings
from edge.store.reserve import Reserve
from edge.store.schema import migrate
from shared.codec import MAX_EVENT_BYTES, envelope_json
from shared.ids import uuid7
from shared.kinds import KINDS
from shared.models import OutboxStats
from shared.sqlite import Transaction, open_db


def is_disk_full(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_FULL: the disk (or the database's page limit) has no room."""
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "full" in str(exc)


class OutboxError(Exception):
    """The event was not queued (bad event, full outbox, full disk)."""


class OutboxFull(OutboxError):
    """The outbox is full under the ``reject_new`` policy, or the disk is full."""


@dataclass(frozen=True)
class Queued:
    seq: int
    id: str


@dataclass(frozen=True)
class Pending:
    seq: int
    body: str
    size: int


class Outbox:
    """Thread-safe: one connection behind a lock. Other processes open their own."""

    def __init__(
        self,
        path: Path | str,
        device: str,
        site: str,
        limits: OutboxSettings | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` is the box's wall clock (event times, ages); ``monotonic`` the clock it
        cannot step (to tell a step of the wall clock from time passing)."""
        self.device, self.site = device, site
        self.limits = limits or OutboxSettings()
        self.clock = clock
        self.on_commit: Callable[[], None] | None = None
        self.disk_full = False
        self._unsaved_rejected = 0  # refused while nothing could be written
        self.monotonic = monotonic
        self._wall0, self._mono0 = clock(), monotonic()
        self._lock = threading.Lock()
        room = 0 if str(path) == ":memory:" else self.limits.reserve_bytes
        self.reserve = Reserve(Path(f"{path}.reserve"), room)
        try:
            self.db = open_db(path)
        except sqlite3.OperationalError:  # no room for its -shm and -wal files
            if not self.reserve.release():
                raise
            self.db = open_db(path)
        (page,) = self.db.conn.execute("PRAGMA page_size").fetchone()
        wal = self.limits.wal_max_bytes
        self.db.conn.execute(f"PRAGMA wal_autocheckpoint = {max(16, wal // 2 // page)}")
        self.db.conn.execute(f"PRAGMA journal_size_limit = {wal}")
        migrate(self.db.conn)
        self.reserve.ensure()

    # -- producing ---------------------------------------------------------------------------
    def enqueue(
        self, kind: str, data: BaseModel | dict[str, Any], ts: datetime | None = None
    ) -> Queued:
        """Validate, then commit one event durably; returns its sequence number and id."""
        return self.enqueue_many([(kind, data, ts)])[0]

    def enqueue_many(
        self,
        items: Sequence[tuple[str, BaseModel | dict[str, Any], datetime | None]],
        also: Callable[[sqlite3.Connection, list[Queued]], None] | None = None,
    ) -> list[Queued]:
        """Commit several events in one transaction (one fsync). ``also`` writes more rows of
        the same box database in that transaction (a ticket with its event)."""
        prepared = [self._prepare(kind, data, ts) for kind, data, ts in items]
        now = self.clock()
        out: list[Queued] = []
        try:
            with self._tx() as conn:
                (last,) = conn.execute(
                    "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name='outbox'), 0)"
                ).fetchone()
                rows = []
                for n, (event_id, kind, ts_iso, data_json) in enumerate(prepared, 1):
                    body = envelope_json(
                        event_id=event_id,
                        device=self.device,
                        site=self.site,
                        seq=last + n,
                        ts=ts_iso,
                        kind=kind,
                        data_json=data_json,
                    )
                    rows.append((last + n, event_id, kind, now, len(body.encode()), body))
                    out.append(Queued(last + n, event_id))
                self._make_room(conn, len(rows), sum(r[4] for r in rows))
                conn.executemany(
                    "INSERT INTO outbox (seq, id, kind, created, size, body) VALUES (?,?,?,?,?,?)",
                    rows,
                )
                if also is not None:
                    also(conn, out)
        except OutboxFull:
            self._count_rejected(len(prepared))
            raise
        except sqlite3.OperationalError as exc:
            if not is_disk_full(exc):
                raise
            self.disk_full = True
            self._count_rejected(len(prepared))
            raise OutboxFull(f"disk full, {len(prepared)} event(s) not queued: {exc}") from exc
        self.disk_full = False
        if self.on_commit is not None:
            self.on_commit()
        return out

    def _prepare(
        self, kind: str, data: BaseModel | dict[str, Any], ts: datetime | None
    ) -> tuple[str, str, str, str]:
        model = KINDS.get(kind)
        if model is None:
            raise OutboxError(f"unknown event kind {kind!r} (known: {', '.join(sorted(KINDS))})")
        try:
            valid = model.model_validate(data.model_dump() if isinstance(data, BaseModel) else data)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "data"
            raise OutboxError(f"bad data for kind {kind!r}: {where}: {err['msg']}") from None
        data_json = valid.model_dump_json(exclude_none=True)
        when = ts or datetime.fromtimestamp(self.clock(), UTC)
        ts_iso = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if ts is not None and ts.utcoffset() is None:
            raise OutboxError("event time must carry a timezone")
        if len(data_json.encode()) + 300 > MAX_EVENT_BYTES:
            raise OutboxError(f"event of kind {kind!r} is larger than {MAX_EVENT_BYTES} bytes")
        return str(uuid7()), kind, ts_iso, data_json

    def _make_room(self, conn: sqlite3.Connection, n: int, nbytes: int) -> None:
        pending, pending_bytes = self._pending(conn)
        over_n = pending + n - self.limits.max_events
        over_b = pending_bytes + nbytes - self.limits.max_bytes
        if over_n <= 0 and over_b <= 0:
            return
        if (
            self.limits.when_full == "reject_new"
            or n > self.limits.max_events
            or nbytes > self.limits.max_bytes
        ):
            raise OutboxFull(
                f"outbox full: {pending} events, {pending_bytes} bytes undelivered "
                f"(limits {self.limits.max_events} events, {self.limits.max_bytes} bytes, "
                f"policy {self.limits.when_full})"
            )
        # drop_oldest: find the newest seq to drop so that both bounds hold again
        dropped = 0
        upto = 0
        cursor = 0
        while over_n > 0 or over_b > 0:
            chunk = conn.execute(
                "SELECT seq, size FROM outbox WHERE confirmed IS NULL AND seq > ? "
                "ORDER BY seq LIMIT 512",
                (cursor,),
            ).fetchall()
            if not chunk:
                break
            for seq, size in chunk:
                if over_n <= 0 and over_b <= 0:
                    break
                upto, over_n, over_b = seq, over_n - 1, over_b - size
                dropped += 1
            cursor = chunk[-1][0]
        conn.execute("DELETE FROM outbox WHERE confirmed IS NULL AND seq <= ?", (upto,))
        conn.execute("UPDATE stats SET value = value + ? WHERE name = 'dropped'", (dropped,))

    def _count_rejected(self, n: int) -> None:
        """Never raises: the caller is already reporting the refusal."""
        with self._lock:
            self._unsaved_rejected += n
        if self.disk_full:
            return  # nothing can be written; saved with the next write that succeeds
        try:
            with self._tx():
                pass
        except sqlite3.OperationalError as exc:  # kept in memory; saved later
            self.disk_full = self.disk_full or is_disk_full(exc)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction under the lock that also saves the refusals counted in memory;
        they leave memory only once it has committed."""
        with self._lock:
            unsaved = self._unsaved_rejected
            with Transaction(self.db) as conn:
                yield conn
                if unsaved:
                    conn.execute(
                        "UPDATE stats SET value = value + ? WHERE name = 'rejected'", (unsaved,)
                    )
            self._unsaved_rejected -= unsaved

    # -- sending -----------------------------------------------------------------------------
    def pending(self, after_seq: int = 0, limit: int = 1000) -> list[Pending]:
        """Unconfirmed events with ``seq > after_seq``, oldest first."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT seq, body, size FROM outbox WHERE confirmed IS NULL AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [Pending(*r) for r in rows]

    def mark_delivered(self, seqs: Iterable[int]) -> None:
        """Record the broker's acknowledgement (PUBACK) of these events."""
        seqs = list(seqs)
        if not seqs:
            return
        now = self.clock()
        with self._lock, Transaction(self.db) as conn:
            conn.executemany(
                "UPDATE outbox SET delivered = ? WHERE seq = ? AND delivered IS NULL",
                ((now, s) for s in seqs),
            )

    def mark_confirmed(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Record the collector's confirmation that these sequence ranges are stored."""
        now = self.clock()
        changed = 0
        with self._lock, Transaction(self.db) as conn:
            for lo, hi in ranges:
                changed += conn.execute(
                    "UPDATE outbox SET confirmed = ?, delivered = coalesce(delivered, ?) "
                    "WHERE seq BETWEEN ? AND ? AND confirmed IS NULL",
                    (now, now, lo, hi),
                ).rowcount
        return changed

    def maintain(self) -> None:
        """Expire unconfirmed events past max_age and prune old confirmed ones."""
        now = self.clock()
        keep = 0.0 if self.disk_full else self.limits.keep_confirmed_s  # room first
        # a wall clock stepped forward during this run (NTP on a box without a real-time
        # clock) does not age the events: the step is taken out of the cut-off
        step = max(0.0, (now - self._wall0) - (self.monotonic() - self._mono0))
        with self._tx() as conn:
            cur = conn.execute(
                "DELETE FROM outbox WHERE confirmed IS NULL AND created < ?",
                (now - self.limits.max_age_s - step,),
            )
            if cur.rowcount:
                conn.execute(
                    "UPDATE stats SET value = value + ? WHERE name = 'expired'", (cur.rowcount,)
                )
            conn.execute(
                "DELETE FROM outbox WHERE confirmed IS NOT NULL AND confirmed < ?",
                (now - keep,),
            )
        if self.disk_full and self.reserve.room():
            self.disk_full = False  # room again (the reserve taken back, or a probe fits)
        self.reserve.ensure()

    # -- other tables of the box database ----------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the box database, for the stall's own tables."""
        with self._lock, Transaction(self.db) as conn:
            yield conn

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self.db.conn.execute(sql, params).fetchall())

    # -- reporting ---------------------------------------------------------------------------
    @staticmethod
    def _pending(conn: sqlite3.Connection) -> tuple[int, int]:
        rows = dict(
            conn.execute(
                "SELECT name, value FROM stats WHERE name IN ('pending', 'pending_bytes')"
            ).fetchall()
        )
        return rows["pending"], rows["pending_bytes"]

    def counters(self) -> dict[str, int]:
        with self._lock:
            c = dict(self.db.conn.execute("SELECT name, value FROM stats").fetchall())
            c["rejected"] += self._unsaved_rejected
        return c

    def last_seq(self) -> int:
        with self._lock:
            row = self.db.conn.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'"
            ).fetchone()
        return int(row[0]) if row else 0

    def stats(self) -> OutboxStats:
        c = self.counters()
        with self._lock:
            row = self.db.conn.execute(
                "SELECT created FROM outbox WHERE confirmed IS NULL ORDER BY seq LIMIT 1"
            ).fetchone()
        oldest = round(max(0.0, self.clock() - row[0]), 3) if row else None
        return OutboxStats(
            depth=c["pending"],
            bytes=c["pending_bytes"],
            oldest_age_s=oldest,
            policy=self.limits.when_full,
            max_events=self.limits.max_events,
            max_bytes=self.limits.max_bytes,
            dropped=c["dropped"],
            rejected=c["rejected"],
            expired=c["expired"],
            disk_full=self.disk_full,
        )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest events, delivered or not, for ``shian-edge outbox status``."""
        with self._lock:
            rows = self.db.conn.execute(
                "SELECT seq, id, kind, created, delivered, confirmed, body FROM outbox "
                "ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            {
                "seq": s,
                "id": i,
                "kind": k,
                "created": c,
                "delivered": d,
                "confirmed": f,
                "data": json.loads(b)["data"],
            }
            for s, i, k, c, d, f, b in rows
        ]

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
