"""SQLite: one connection behind a lock (the writer thread and the CLI's readers share it);
``BEGIN IMMEDIATE`` makes every write transaction the only one."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cloud.db.base import Conn, Cursor, Dialect
from shared.sqlite import Transaction, open_db


class SqliteConn:
    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.raw.execute(sql, params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Cursor:
        return self.raw.executemany(sql, params)

    def append(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        marks = ",".join("?" * len(columns))
        self.raw.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING",
            rows,
        )

    def lock(self, *keys: str) -> None:
        return None


class SqliteDb:
    dialect: Dialect = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.db = open_db(path)
        self._lock = threading.Lock()

    @contextmanager
    def tx(self, locks: Iterable[str] = ()) -> Iterator[Conn]:
        with self._lock, Transaction(self.db) as conn:
            yield SqliteConn(conn)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def close(self) -> None:
        with self._lock:
            self.db.conn.close()
