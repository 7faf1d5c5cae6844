"""The collector's database: SQLite (the embedded default) or PostgreSQL, chosen by URL.

Both run the same SQL. It is written once, in the dialect both understand (``ON CONFLICT``
upserts, ``?`` placeholders, no SQLite-only functions); the PostgreSQL side only swaps the
placeholders and the column types of the schema.
"""

from __future__ import annotations

from pathlib import Path

from cloud.db.base import Conn, Db

__all__ = ["Conn", "Db", "is_transient", "is_url", "open_database", "redact"]


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def open_database(target: str | Path, pool_size: int = 4) -> Db:
    """A PostgreSQL database for a ``postgresql://`` URL, else an SQLite file (migrated)."""
    from cloud.db.migrations import migrate

    db: Db
    if is_url(target):
        from cloud.db.postgres import PostgresDb

        db = PostgresDb(str(target), pool_size)
    else:
        from cloud.db.sqlite import SqliteDb

        db = SqliteDb(target)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def redact(url: str) -> str:
    """The URL without its password, for logs and messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is the database being away, busy or locked (wait and try
    again) rather than a statement it refuses for what is in it."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
