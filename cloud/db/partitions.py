"""PostgreSQL keeps ``events`` in one partition per month of ``received`` (the collector's
clock, never a box's), so years of events stay cheap to query and old months are dropped whole.

A query bounded by ``received`` reads only its months (partition pruning); every index is
declared on the parent, so each month has them all. A ``DEFAULT`` partition takes any row no
month holds yet, so an insert never fails; ``ensure`` makes the coming months ahead of time and
moves into a new month what the default partition holds of it. SQLite keeps one table (a city
fits in it); there these functions do nothing.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from cloud.db.base import Conn, Db

log = logging.getLogger("shian.store")

AHEAD_MONTHS = 2
"""Months made ahead of the current one."""
LOCK_TIMEOUT = "SET LOCAL lock_timeout = '2s'"
"""Making or dropping a month locks ``events`` whole: behind a long reader (a dump, a big
export) it would hold every write up. It gives up instead, and is tried again at the next
pruning (it is made two months ahead)."""

_COLUMNS = (
    "id TEXT NOT NULL, device TEXT NOT NULL, site TEXT NOT NULL, seq BIGINT NOT NULL,"
    " ts TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,"
    " received DOUBLE PRECISION NOT NULL"
)
_INDEXES = {
    "events_id": "(id)",
    "events_device_seq": "(device, seq)",
    "events_received": "(received)",
    "events_site_kind": "(site, kind, received)",
}


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, t: float) -> Month:
        d = datetime.fromtimestamp(t, UTC)
        return cls(d.year, d.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def minus(self, n: int) -> Month:
        k = self.year * 12 + self.month - 1 - n
        return Month(k // 12, k % 12 + 1)

    @property
    def start(self) -> float:
        return datetime(self.year, self.month, 1, tzinfo=UTC).timestamp()

    @property
    def table(self) -> str:
        return f"events_{self.year:04d}_{self.month:02d}"


def partition_events(conn: Conn) -> None:
    """Migration 14: the one ``events`` table becomes a partitioned one (PostgreSQL only).
    Its rows are copied into their months; on a large store this takes a while, once."""
    if conn.dialect != "postgresql":
        return
    conn.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    conn.execute("ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_old_pk")
    for name in _INDEXES:
        conn.execute(f"ALTER INDEX IF EXISTS {name} RENAME TO {name}_old")
    conn.execute(f"CREATE TABLE events ({_COLUMNS}) PARTITION BY RANGE (received)")
    for name, cols in _INDEXES.items():
        conn.execute(f"CREATE INDEX {name} ON events {cols}")
    conn.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    row = conn.execute("SELECT min(received), max(received) FROM events_unpartitioned").fetchone()
    first = Month.of(row[0]) if row and row[0] is not None else None
    _make_months(conn, first, Month.of(row[1]) if first else None, time.time())
    conn.execute("INSERT INTO events SELECT * FROM events_unpartitioned")
    conn.execute("DROP TABLE events_unpartitioned")


def _month(table: str) -> Month:
    return Month(int(table[7:11]), int(table[12:14]))


_TABLE = re.compile(r"events_\d{4}_\d{2}")


def _existing(conn: Conn) -> set[str]:
    """The month tables (and ``events_default``) of this schema's ``events``; a table an
    operator attached by hand under another name is left alone."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'events'::regclass"
    ).fetchall()
    return {r[0] for r in rows if r[0] == "events_default" or _TABLE.fullmatch(r[0])}


def _make_months(conn: Conn, first: Month | None, last: Month | None, t: float) -> list[str]:
    """Make the months from ``first`` (or ``t``'s) to ``AHEAD_MONTHS`` past ``t``'s (or to
    ``last`` if later), moving into each what the default partition holds of it."""
    now = Month.of(t)
    m, end = first or now, now
    for _ in range(AHEAD_MONTHS):
        end = end.next()
    if last and last.start > end.start:
        end = last
    have, made = _existing(conn), []
    while m.start <= end.start:
        if m.table not in have:
            lo, hi = m.start, m.next().start
            conn.execute(f"CREATE TABLE {m.table} (LIKE events INCLUDING DEFAULTS)")
            conn.execute(
                f"WITH moved AS (DELETE FROM events_default WHERE received >= {lo!r}"
                f" AND received < {hi!r} RETURNING *) INSERT INTO {m.table} SELECT * FROM moved"
            )
            conn.execute(
                f"ALTER TABLE events ATTACH PARTITION {m.table}"
                f" FOR VALUES FROM ({lo!r}) TO ({hi!r})"
            )
            made.append(m.table)
        m = m.next()
    return made


class Partitions:
    """The months of ``events``: made ahead, listed, and dropped past ``keep_months``."""

    def __init__(self, db: Db, keep_months: int = 0) -> None:
        self.db, self.keep_months = db, keep_months

    @property
    def enabled(self) -> bool:
        return self.db.dialect == "postgresql"

    def ensure(self, now: float) -> list[str]:
        """Make ``now``'s month and the next ones if missing; returns the tables made."""
        if not self.enabled:
            return []
        with self.db.tx(locks=["schema"]) as conn:
            conn.execute(LOCK_TIMEOUT)
            months = [_month(n) for n in _existing(conn) if n != "events_default"]
            months.append(Month.of(now))  # from the first month to the last: no hole is left
            first = min(months, key=lambda m: m.start)
            made = _make_months(conn, first, max(months, key=lambda m: m.start), now)
        if made:
            log.info("events partitions made: %s", ", ".join(made))
        return made

    def months(self) -> list[dict[str, object]]:
        """Each month's table, its range and its rows (the planner's estimate)."""
        if not self.enabled:
            return []
        return self.db.query(
            "SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bounds,"
            " greatest(c.reltuples, 0)::bigint AS rows,"
            " pg_total_relation_size(c.oid) AS bytes"
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'events'::regclass ORDER BY c.relname"
        )

    def prune(self, now: float) -> list[str]:
        """Drop the months that ended more than ``keep_months`` months before ``now``'s
        month began (0 keeps everything); returns the tables dropped."""
        if not self.enabled or self.keep_months <= 0:
            return []
        cut = Month.of(now).minus(self.keep_months)
        dropped = []
        with self.db.tx(locks=["schema"]) as conn:
            conn.execute(LOCK_TIMEOUT)
            for name in sorted(_existing(conn)):
                if name == "events_default":
                    continue
                if _month(name).start < cut.start:
                    conn.execute(f"DROP TABLE {name}")
                    dropped.append(name)
        if dropped:
            log.info("events partitions dropped (older than %d months): %s",
                     self.keep_months, ", ".join(dropped))  # fmt: skip
        return dropped
