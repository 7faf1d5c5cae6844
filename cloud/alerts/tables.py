"""Helpers over the alert tables, which live in the collector's database (schema in
``cloud.db.migrations``) and are written in the same transactions as the events they come from,
so an alert is never lost or doubled across a restart."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cloud.db.base import Conn, Cursor


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def row_dict(cur: Cursor, row: tuple[Any, ...]) -> dict[str, Any]:
    return {d[0]: v for d, v in zip(cur.description or (), row, strict=True)}


def fetch(conn: Conn, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    return [row_dict(cur, r) for r in cur.fetchall()]


def district_of(conn: Conn, site: str, default: str) -> str:
    row = conn.execute("SELECT district FROM sites WHERE site = ?", (site,)).fetchone()
    return str(row[0]) if row else default


def devices_of(conn: Conn, site: str) -> list[str]:
    """A site's boxes: those heard from, and those registered and not revoked (a notice is
    retained, so a box not yet heard from finds it when it connects)."""
    rows = conn.execute(
        "SELECT device FROM devices WHERE site = ? UNION SELECT name FROM registry"
        " WHERE site = ? AND kind = 'device' AND revoked IS NULL ORDER BY 1",
        (site, site),
    )
    return [r[0] for r in rows]


def history(row: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(row["history"])
    return steps
