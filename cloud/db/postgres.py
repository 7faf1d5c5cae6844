"""PostgreSQL through psycopg 3 and its connection pool.

Several collectors may write at once. What must not interleave is serialised with
transaction-scoped advisory locks, taken in sorted order so two writers never wait on each
other in a circle: one per device (its sequence ranges, counters and status), and one named
``alerts`` for the alert engine (one open alert per key, the district incidents). Events are
looked for and appended under their device's lock (``cloud.events``): ``events`` is
partitioned by month, so no unique index spans it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from cloud.db import redact
from cloud.db.base import Conn, Cursor, Dialect

try:
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool
except ImportError as exc:  # pragma: no cover - installed with the project
    raise ImportError(
        "a postgresql:// store needs psycopg and psycopg-pool: pip install 'psycopg[binary]' "
        "psycopg-pool"
    ) from exc

_VALUES = re.compile(r"^\s*INSERT\b.*?\bVALUES\s*(\((?:\?\s*,\s*)*\?\))", re.I | re.S)
_INTO = re.compile(
    r"^\s*INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)\s*VALUES\s*\((?:\?\s*,\s*)*\?\)", re.I | re.S
)
_SCALARS = (str, int, float, type(None))
MULTI_ROW = 200


@functools.lru_cache(maxsize=512)
def placeholders(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled); only for a
    statement with parameters (without, psycopg reads ``%`` as itself)."""
    return sql.replace("%", "%%").replace("?", "%s")


def text_safe(params: Sequence[Any]) -> Sequence[Any]:
    """PostgreSQL text cannot hold NUL (SQLite's can): one from a box (a key in a dead letter's
    reason, a camera name in an alert title) would fail the whole batch again and again; it is
    stored as U+FFFD instead."""
    if not any(isinstance(v, str) and "\x00" in v for v in params):
        return params
    return [v.replace("\x00", "\ufffd") if isinstance(v, str) else v for v in params]


def _as_json(rows: list[Sequence[Any]]) -> bool:
    """Whether every value of the rows says the same in JSON (no bytes, booleans, NaN or
    infinities)."""
    return all(
        type(v) in _SCALARS and (type(v) is not float or math.isfinite(v))
        for row in rows
        for v in row
    )


class PostgresConn:
    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.raw = conn
        self._held: set[str] = set()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        args = text_safe(params) if params else None
        cur: Cursor = self.raw.execute(placeholders(sql) if params else sql, args)
        return cur

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Cursor:
        """An INSERT of many rows becomes multi-row ``VALUES`` statements (one round trip and
        one plan per 200 rows, not one per row); anything else is pipelined row by row.
        Rows of one upsert must not repeat a key (PostgreSQL refuses to update a row twice in
        one statement): callers pass unique rows."""
        rows = list(params)
        cur = self.raw.cursor()
        if not rows:  # nothing to send: no round trip (a batch with no tickets, no dead letters)
            return cur
        into = _INTO.match(sql)
        if into is not None and rows and "?" not in sql[into.end() :] and _as_json(rows):
            # One statement with one parameter, the rows as a JSON array: psycopg prepares
            # and keeps it, where a multi-row VALUES of hundreds of placeholders is parsed
            # again in Python at each call; PostgreSQL casts each field to its column's type
            # (so an integer column takes integers: a float like 3.0 is refused, not rounded).
            table, cols = into.group(1), [c.strip() for c in into.group(2).split(",")]
            doc = json.dumps([dict(zip(cols, row, strict=True)) for row in rows])
            if "\\u0000" in doc:  # a NUL somewhere (rare): as U+FFFD, like text_safe
                doc = json.dumps([dict(zip(cols, text_safe(r), strict=True)) for r in rows])
            names = ", ".join(cols)
            tail = placeholders(sql[into.end() :])
            cur.execute(
                f"INSERT INTO {table} ({names}) SELECT {names}"
                f" FROM json_populate_recordset(NULL::{table}, %s){tail}",
                (doc,),
            )
            return cur
        rows = [text_safe(row) for row in rows]
        values = _VALUES.search(sql)
        if values is None or not rows:
            cur.executemany(placeholders(sql), rows)
            return cur
        head, group, tail = sql[: values.start(1)], values.group(1), sql[values.end(1) :]
        for i in range(0, len(rows), MULTI_ROW):
            chunk = rows[i : i + MULTI_ROW]
            statement = placeholders(head + ",".join([group] * len(chunk)) + tail)
            cur.execute(statement, [v for row in chunk for v in row])
        return cur

    def append(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        if not rows:
            return
        with self.raw.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(text_safe(row))

    def lock(self, *keys: str) -> None:
        wanted = sorted(set(keys) - self._held)
        if not wanted:
            return
        # one round trip for all of them, taken in sorted order
        self.raw.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))"
            " FROM (SELECT unnest(%s::text[]) AS k ORDER BY 1) AS keys",
            (wanted,),
        )
        self._held.update(wanted)


class PostgresDb:
    dialect: Dialect = "postgresql"

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self.url = url
        try:  # one plain connection first: a wrong URL fails at once, with libpq's reason
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            raise ConnectionError(f"cannot reach PostgreSQL at {redact(url)}: {exc}") from exc
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs={"autocommit": True},
            open=True,
            name="shian-store",
        )

    @contextmanager
    def tx(self, locks: Iterable[str] = ()) -> Iterator[Conn]:
        with self.pool.connection() as raw, raw.transaction():
            conn = PostgresConn(raw)
            conn.lock(*locks)
            yield conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.pool.connection() as raw, raw.cursor(row_factory=dict_row) as cur:
            cur.execute(placeholders(sql) if params else sql, text_safe(params) if params else None)
            return cur.fetchall()

    def describe(self) -> str:
        return redact(self.url)

    def close(self) -> None:
        self.pool.close()
