"""Opening SQLite the same way on the edge and in the cloud.

WAL lets readers (the CLI, the display) run beside the one writer without "database is
locked". ``synchronous=FULL`` makes every commit fsync the WAL before it returns: in WAL mode
``NORMAL`` never corrupts the file, but on a power cut it may lose the last commits, and both
sides acknowledge data as soon as their commit returns (the edge then sends the event and may
print its ticket; the collector then sends PUBACK and the edge forgets the event). A lost
commit after such an acknowledgement would be a lost event, so durability wins over the
fsync per transaction, whose cost batching amortises (see docs/durability.md).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

import sqlite_utils


def open_db(path: Path | str, *, busy_timeout_ms: int = 10_000) -> sqlite_utils.Database:
    """A connection in autocommit mode (transactions are explicit ``BEGIN IMMEDIATE``),
    usable from several threads under the caller's own lock."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # made 0600 whatever the umask (an operator's command run by hand): it holds people's
        # names and health checks; SQLite gives its -wal and -shm files the same mode
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(
        str(path), isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    db = sqlite_utils.Database(conn)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.enable_wal()
    db.execute("PRAGMA synchronous = FULL")
    return db


class Transaction:
    """``with Transaction(db):`` takes the write lock at once (BEGIN IMMEDIATE), so two
    processes never deadlock upgrading a read to a write; commits on success."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.conn: sqlite3.Connection = db.conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL)
            self.conn.execute("ROLLBACK")
