"""The box database's one owner: its schema, as numbered migrations.

Every table of ``outbox.db`` is made here, never by the module that uses it (named beside each
table), and the schema's version is SQLite's ``user_version``. ``migrate`` runs at every open
(``Outbox``), each migration in its own transaction with the version it brings, so a power cut
leaves the database at one version or the next, never between.

Migration 1 is the schema as it stood before there were versions (each statement ``IF NOT
EXISTS``): a database made then adopts it as it is. Later migrations are additive only (new
tables, new columns with defaults), so a release rolled back by an update still runs on a
database a newer release migrated; it says so in the log and leaves the newer parts alone.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("shian.schema")

OUTBOX = """
-- edge.store.outbox: the events, and counters kept by triggers
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL,
    delivered REAL,
    confirmed REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(seq) WHERE confirmed IS NULL;
CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO stats VALUES
    ('pending', 0), ('pending_bytes', 0), ('dropped', 0), ('rejected', 0), ('expired', 0),
    ('delivered', 0), ('confirmed', 0);
CREATE TRIGGER IF NOT EXISTS outbox_ins AFTER INSERT ON outbox BEGIN
    UPDATE stats SET value = value + 1 WHERE name = 'pending';
    UPDATE stats SET value = value + NEW.size WHERE name = 'pending_bytes';
END;
CREATE TRIGGER IF NOT EXISTS outbox_puback AFTER UPDATE OF delivered ON outbox
WHEN OLD.delivered IS NULL AND NEW.delivered IS NOT NULL BEGIN
    UPDATE stats SET value = value + 1 WHERE name = 'delivered';
END;
CREATE TRIGGER IF NOT EXISTS outbox_confirm AFTER UPDATE OF confirmed ON outbox
WHEN OLD.confirmed IS NULL AND NEW.confirmed IS NOT NULL BEGIN
    UPDATE stats SET value = value - 1 WHERE name = 'pending';
    UPDATE stats SET value = value - OLD.size WHERE name = 'pending_bytes';
    UPDATE stats SET value = value + 1 WHERE name = 'confirmed';
END;
CREATE TRIGGER IF NOT EXISTS outbox_del AFTER DELETE ON outbox WHEN OLD.confirmed IS NULL BEGIN
    UPDATE stats SET value = value - 1 WHERE name = 'pending';
    UPDATE stats SET value = value - OLD.size WHERE name = 'pending_bytes';
END;
"""

OTHERS = """
-- edge.store.snapshots: evidence pictures waiting to be sent
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    delivered REAL,
    confirmed REAL
);
CREATE INDEX IF NOT EXISTS snapshots_pending ON snapshots(id) WHERE confirmed IS NULL;
-- edge.stall.tickets: tickets and their printing
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    created REAL NOT NULL,
    printed REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS tickets_pending ON tickets(created) WHERE printed IS NULL;
-- edge.stall.catalog: the stall's products, pushed by the cloud
CREATE TABLE IF NOT EXISTS catalog (plu TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS catalog_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- edge.notices: alerts shown on the box's screen
CREATE TABLE IF NOT EXISTS notices (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    received REAL NOT NULL,
    answered REAL,
    reply TEXT
);
-- edge.display.records: morning checks and disinfection, as entered
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, at REAL NOT NULL, data TEXT NOT NULL);
-- edge.vision.kitchen: per camera and violation type, when it last fired
CREATE TABLE IF NOT EXISTS cooldowns (camera TEXT, type TEXT, at REAL,
    PRIMARY KEY (camera, type));
"""


def _ticket_copies(conn: sqlite3.Connection) -> None:
    """edge.stall.tickets: a reprint is marked a copy (补打). Databases of issue 13 have it."""
    if "copy" not in {r[1] for r in conn.execute("PRAGMA table_info(tickets)")}:
        conn.execute("ALTER TABLE tickets ADD COLUMN copy INTEGER NOT NULL DEFAULT 0")


def _statements(sql: str) -> Callable[[sqlite3.Connection], None]:
    def run(conn: sqlite3.Connection) -> None:
        # executescript would commit the transaction; statements one by one keep it open
        for stmt in _split(sql):
            conn.execute(stmt)

    return run


def _split(sql: str) -> list[str]:
    """Statements of a script (triggers hold ``;`` inside BEGIN ... END)."""
    out, part = [], ""
    for line in sql.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        part += line
        if sqlite3.complete_statement(part):
            out.append(part.strip())
            part = ""
    return [s for s in out if s.strip(" ;\n")]


@dataclass(frozen=True)
class Migration:
    version: int
    why: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS = [
    Migration(1, "the schema before versions", _statements(OUTBOX + OTHERS)),
    Migration(2, "tickets printed again are marked copies", _ticket_copies),
    Migration(
        3,
        "over-the-air updates the box has handled",
        _statements(
            """
-- edge.updates: each update taken (staged), refused, applied or rolled back
CREATE TABLE IF NOT EXISTS updates (
    id TEXT NOT NULL, n INTEGER NOT NULL, kind TEXT NOT NULL, outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '', at REAL NOT NULL, PRIMARY KEY (id, outcome));
"""
        ),
    ),
    Migration(
        4,
        "sensors' raw readings",
        _statements(
            """
-- edge.sensors.service: every reading, kept for its sensor's keep_raw_h
CREATE TABLE IF NOT EXISTS sensor_readings (
    sensor TEXT NOT NULL, at REAL NOT NULL, temperature REAL, humidity REAL);
CREATE INDEX IF NOT EXISTS sensor_readings_at ON sensor_readings(sensor, at);
"""
        ),
    ),
    Migration(
        5,
        "storage: each purchase a lot, what is left of it, its expiry warnings",
        _statements(
            """
-- edge.ledger.stock: the lots in stock, first-expired first-out
CREATE TABLE IF NOT EXISTS stock (
    lot TEXT PRIMARY KEY, product TEXT NOT NULL, batch TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT 'other', unit TEXT NOT NULL, quantity REAL NOT NULL,
    left REAL NOT NULL, expires TEXT, received REAL NOT NULL, warned TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS stock_fefo ON stock(expires, received) WHERE left > 0;
"""
        ),
    ),
    Migration(
        6,
        "sensors' alert states, kept across a restart",
        _statements(
            """
-- edge.sensors.service: an excursion raised, a sensor lost (cleared or back after a restart)
CREATE TABLE IF NOT EXISTS sensor_state (
    sensor TEXT PRIMARY KEY, raised INTEGER NOT NULL DEFAULT 0, since REAL,
    lost INTEGER NOT NULL DEFAULT 0);
"""
        ),
    ),
]
LATEST = MIGRATIONS[-1].version


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to ``LATEST``; returns the version it was at. ``conn`` is in
    autocommit mode (``shared.sqlite.open_db``)."""
    start = version(conn)
    if start > LATEST:
        log.warning("box database at schema %d, newer than this release's %d", start, LATEST)
        return start
    for m in MIGRATIONS:
        if m.version <= start:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version(conn) < m.version:  # another process may have just done it
                m.apply(conn)
                conn.execute(f"PRAGMA user_version = {m.version}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("box database migrated to schema %d: %s", m.version, m.why)
    return start
