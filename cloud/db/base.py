"""The small interface the store and the alert engine write against."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Sequence[Any] | None: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """One open write transaction."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Cursor: ...

    def append(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        """Insert rows the caller knows are new, the fastest way the database has
        (PostgreSQL: ``COPY``, a third quicker than a batched insert). SQLite skips a row
        whose key is there already; PostgreSQL's ``COPY`` checks no conflict, and fails on
        a unique key."""

    def lock(self, *keys: str) -> None:
        """Serialise with other writers (other collectors) on these names until commit.
        SQLite has one writer at a time already, so there it does nothing."""


class Db(Protocol):
    dialect: Dialect

    def tx(self, locks: Iterable[str] = ()) -> AbstractContextManager[Conn]:
        """A write transaction, committed on success; ``locks`` are taken first, sorted."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows as dicts, outside any write transaction."""

    def describe(self) -> str:
        """What it is, for logs (a URL without its password)."""

    def close(self) -> None: ...
