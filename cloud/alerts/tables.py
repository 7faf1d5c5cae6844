"""The alert tables, in the collector's database (written in the same transactions as the
events they come from, so an alert is never lost or doubled across a restart)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    site TEXT PRIMARY KEY, district TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
    morning_check_by TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS events_site_kind ON events(site, kind, received);
CREATE TABLE IF NOT EXISTS supervisors (name TEXT PRIMARY KEY, district TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    type TEXT NOT NULL,
    district TEXT NOT NULL,
    site TEXT NOT NULL,
    device TEXT,
    camera TEXT,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    due REAL,
    escalated INTEGER NOT NULL DEFAULT 0,
    escalated_at REAL,
    snapshot TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    history TEXT NOT NULL DEFAULT '[]'
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_open ON alerts(key) WHERE state != 'closed';
CREATE INDEX IF NOT EXISTS alerts_district ON alerts(district, state);
CREATE TABLE IF NOT EXISTS alert_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    sent REAL
);
CREATE INDEX IF NOT EXISTS alert_outbox_pending ON alert_outbox(seq) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS webhook_queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bot TEXT NOT NULL,
    alert TEXT NOT NULL,
    text TEXT NOT NULL,
    created REAL NOT NULL,
    sent REAL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS webhook_pending ON webhook_queue(bot, id) WHERE sent IS NULL;
CREATE TABLE IF NOT EXISTS certs (
    number TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    kind TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires TEXT NOT NULL,
    stage TEXT
);
CREATE TABLE IF NOT EXISTS device_health (
    device TEXT PRIMARY KEY,
    dropped INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0
);
"""


def create(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def row_dict(cur: sqlite3.Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cur.description, row, strict=True)}


def fetch(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    return [row_dict(cur, r) for r in cur.fetchall()]


def district_of(conn: sqlite3.Connection, site: str, default: str) -> str:
    row = conn.execute("SELECT district FROM sites WHERE site = ?", (site,)).fetchone()
    return str(row[0]) if row else default


def devices_of(conn: sqlite3.Connection, site: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT device FROM devices WHERE site = ?", (site,))]


def history(row: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(row["history"])
    return steps
