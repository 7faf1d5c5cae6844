"""Schema migrations: numbered steps, each applied once, in one transaction with its record.

The schema is written once in SQLite's words; ``for_postgres`` turns it into PostgreSQL's
(column types only). Several collectors starting together on one PostgreSQL take a lock, so
each step runs once. Version 1 is the schema from before migrations existed; its statements
say ``IF NOT EXISTS``, so a database made by an older collector is adopted as it is.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from cloud.db.base import Conn, Db
from cloud.db.partitions import partition_events

BASE = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, site TEXT NOT NULL, seq INTEGER NOT NULL,
    ts TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL, received REAL NOT NULL);
CREATE INDEX IF NOT EXISTS events_device_seq ON events(device, seq);
CREATE INDEX IF NOT EXISTS events_received ON events(received);
CREATE INDEX IF NOT EXISTS events_site_kind ON events(site, kind, received);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, site TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'unknown',
    state_reason TEXT NOT NULL DEFAULT '', state_changed REAL, last_status TEXT,
    last_seen REAL, events INTEGER NOT NULL DEFAULT 0, duplicates INTEGER NOT NULL DEFAULT 0,
    max_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS seq_ranges (
    device TEXT NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, PRIMARY KEY (device, lo));
CREATE TABLE IF NOT EXISTS tickets (
    ticket_id TEXT PRIMARY KEY, device TEXT NOT NULL, event_id TEXT NOT NULL,
    data TEXT NOT NULL, received REAL NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
    received REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deadletters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,
    reason TEXT NOT NULL, received REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY, district TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
    morning_check_by TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS supervisors (name TEXT PRIMARY KEY, district TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, state TEXT NOT NULL, severity TEXT NOT NULL,
    type TEXT NOT NULL, district TEXT NOT NULL, site TEXT NOT NULL, device TEXT, camera TEXT,
    source TEXT NOT NULL, title TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL,
    count INTEGER NOT NULL DEFAULT 1, due REAL, escalated INTEGER NOT NULL DEFAULT 0,
    escalated_at REAL, snapshot TEXT, version INTEGER NOT NULL DEFAULT 1,
    history TEXT NOT NULL DEFAULT '[]');
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts(key) WHERE state != 'closed';
CREATE INDEX IF NOT EXISTS alerts_district ON alerts(district, state);
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, sent REAL);
CREATE INDEX IF NOT EXISTS alert_outbox_pending ON alert_outbox(seq) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS webhook_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT, bot TEXT NOT NULL, alert TEXT NOT NULL,
    text TEXT NOT NULL, created REAL NOT NULL, sent REAL, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS webhook_pending ON webhook_queue(bot, id) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS certs (
    number TEXT PRIMARY KEY, site TEXT NOT NULL, kind TEXT NOT NULL, holder TEXT NOT NULL,
    expires TEXT NOT NULL, stage TEXT);
CREATE TABLE IF NOT EXISTS device_health (
    device TEXT PRIMARY KEY, dropped INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS registry (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, role TEXT, site TEXT, district TEXT,
    revoked REAL);
"""

INCIDENTS = """
CREATE TABLE incident_devices (
    incident TEXT NOT NULL, device TEXT NOT NULL, site TEXT NOT NULL, since REAL NOT NULL,
    back REAL, PRIMARY KEY (incident, device));
CREATE INDEX incident_devices_device ON incident_devices(device) WHERE back IS NULL;
ALTER TABLE alerts ADD COLUMN dirty INTEGER NOT NULL DEFAULT 0;
ALTER TABLE alerts ADD COLUMN published REAL;
"""

LEASES = """
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until REAL NOT NULL);
"""

UNTRUSTED = """
ALTER TABLE registry ADD COLUMN market TEXT NOT NULL DEFAULT '';
ALTER TABLE registry ADD COLUMN stall_no TEXT NOT NULL DEFAULT '';
ALTER TABLE registry ADD COLUMN retailer TEXT NOT NULL DEFAULT '';
ALTER TABLE registry ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE deadletters ADD COLUMN digest TEXT;
ALTER TABLE deadletters ADD COLUMN repeats INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deadletters ADD COLUMN last_received REAL;
CREATE UNIQUE INDEX deadletters_digest ON deadletters(digest);
CREATE INDEX deadletters_received ON deadletters(received);
CREATE TABLE alert_evidence (
    alert TEXT NOT NULL, snapshot TEXT NOT NULL, PRIMARY KEY (alert, snapshot));
CREATE INDEX alert_evidence_snapshot ON alert_evidence(snapshot);
CREATE INDEX snapshots_device_received ON snapshots(device, received);
CREATE INDEX snapshots_received ON snapshots(received);
"""

CLOCKS = """
ALTER TABLE devices ADD COLUMN ended_runs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE devices ADD COLUMN clock_skew_s REAL;
ALTER TABLE devices ADD COLUMN status_received REAL;
"""

FLEET = """
CREATE TABLE IF NOT EXISTS fleet_rollouts (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, part TEXT NOT NULL, targets TEXT NOT NULL,
    stages TEXT NOT NULL, stage INTEGER NOT NULL, max_failures INTEGER NOT NULL,
    health_s REAL NOT NULL, state TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS fleet_updates (
    id TEXT PRIMARY KEY, rollout TEXT NOT NULL, device TEXT NOT NULL, n INTEGER NOT NULL,
    kind TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL DEFAULT '', sent REAL NOT NULL, updated REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS fleet_updates_device ON fleet_updates(device, n);
CREATE INDEX IF NOT EXISTS fleet_updates_rollout ON fleet_updates(rollout)
"""

SITE_PAGES = """
ALTER TABLE sites ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN grade TEXT NOT NULL DEFAULT '';
ALTER TABLE sites ADD COLUMN grade_set REAL
"""

LIVE = """
ALTER TABLE sites ADD COLUMN live_off INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sites ADD COLUMN live_cap INTEGER
"""

CONSOLE = """
ALTER TABLE supervisors ADD COLUMN role TEXT NOT NULL DEFAULT 'supervisor';
CREATE TABLE console_sessions (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, csrf TEXT NOT NULL, created REAL NOT NULL,
    seen REAL NOT NULL);
CREATE TABLE console_logins (
    name TEXT PRIMARY KEY, failures INTEGER NOT NULL DEFAULT 0, locked_until REAL);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL,
    action TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '')
"""

CONSOLE_INDEXES = """
CREATE INDEX IF NOT EXISTS alerts_last_seen ON alerts(last_seen);
CREATE INDEX IF NOT EXISTS alerts_district_seen ON alerts(district, last_seen);
CREATE INDEX IF NOT EXISTS alerts_site_seen ON alerts(site, first_seen)
"""

PATROLS = """
ALTER TABLE supervisors ADD COLUMN firm TEXT NOT NULL DEFAULT '';
CREATE TABLE patrol_tasks (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, district TEXT NOT NULL, checklist TEXT NOT NULL,
    inspector TEXT NOT NULL DEFAULT '', firm TEXT NOT NULL DEFAULT '', due REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'assigned', assigned_by TEXT NOT NULL, created REAL NOT NULL,
    started REAL, finished REAL, finished_by TEXT NOT NULL DEFAULT '');
CREATE INDEX patrol_tasks_district ON patrol_tasks(district, due);
CREATE INDEX patrol_tasks_inspector ON patrol_tasks(inspector, due);
CREATE INDEX patrol_tasks_firm ON patrol_tasks(firm, due);
CREATE TABLE patrol_items (
    task TEXT NOT NULL, item TEXT NOT NULL, result TEXT NOT NULL, note TEXT NOT NULL DEFAULT '',
    photos TEXT NOT NULL DEFAULT '[]', due_h REAL, hazard TEXT, at REAL NOT NULL,
    by TEXT NOT NULL, PRIMARY KEY (task, item))
"""

PURCHASES = """
CREATE TABLE purchases (
    id TEXT PRIMARY KEY, site TEXT NOT NULL, device TEXT NOT NULL, supplier TEXT NOT NULL,
    product TEXT NOT NULL, batch TEXT NOT NULL, quantity REAL NOT NULL, unit TEXT NOT NULL,
    expires TEXT, ticket TEXT, stall TEXT NOT NULL DEFAULT '', ticket_state TEXT NOT NULL,
    received REAL NOT NULL);
CREATE INDEX purchases_batch ON purchases(batch, stall);
CREATE INDEX purchases_site ON purchases(site, received)
"""

STOCK = """
ALTER TABLE purchases ADD COLUMN used REAL NOT NULL DEFAULT 0
"""

MIGRATIONS: list[tuple[int, str, str | Callable[[Conn], None]]] = [
    (1, "base schema", BASE),
    (2, "district incidents", INCIDENTS),
    (3, "leases: one collector of a group publishes alerts and posts to bots", LEASES),
    (4, "untrusted boxes: stall identity and key ids, dead-letter repeats, evidence", UNTRUSTED),
    (5, "box clocks: statuses ordered by run, the clock's drift kept", CLOCKS),
    (6, "over-the-air updates: rollouts and each box's update", FLEET),
    (7, "public site pages: a site's kind and its food-safety grade", SITE_PAGES),
    (8, "live views: the regulator's switch and a site's cap on viewers", LIVE),
    (9, "the supervisors' console: roles, sessions, lockout, the audit log", CONSOLE),
    (10, "the console's lists newest first, by district and by site", CONSOLE_INDEXES),
    (11, "patrols: inspectors and their firms, tasks, checklist results, hazards", PATROLS),
    (12, "the kitchens' purchase ledgers, linked to the stalls' tickets", PURCHASES),
    (13, "what each kitchen has taken out of each purchase", STOCK),
    (14, "PostgreSQL: events partitioned by month of receipt", partition_events),
]

_PG_TYPES = [
    (
        r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    (r"\bINTEGER\b", "BIGINT"),
    (r"\bREAL\b", "DOUBLE PRECISION"),
    (r"\bBLOB\b", "BYTEA"),
]


def for_postgres(sql: str) -> str:
    for pattern, repl in _PG_TYPES:
        sql = re.sub(pattern, repl, sql)
    return sql


def statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


def migrate(db: Db) -> list[int]:
    """Apply the steps the database lacks; returns their numbers."""
    applied: list[int] = []
    with db.tx(locks=["schema"]) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied REAL NOT NULL)"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            if callable(sql):  # a step in code: it knows its dialect
                sql(conn)
            else:
                for stmt in statements(for_postgres(sql) if db.dialect == "postgresql" else sql):
                    conn.execute(stmt)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
                (version, name, time.time()),
            )
            applied.append(version)
    return applied


def version(db: Db) -> int:
    rows = db.query("SELECT max(version) AS v FROM schema_migrations")
    return int(rows[0]["v"] or 0)
