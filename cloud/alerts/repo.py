"""Alerts as the CLI and the pages read them, and the queue of messages for group bots."""

from __future__ import annotations

import time
from typing import Any

from cloud.alerts import incidents
from cloud.alerts.engine import AlertEngine
from cloud.config import AlertSettings
from cloud.db import Db


class Alerts:
    def __init__(self, db: Db, engine: AlertEngine | None) -> None:
        self.db = db
        self.engine = engine or AlertEngine(AlertSettings())  # renders what it reads

    def list(
        self, district: str | None = None, state: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM alerts WHERE 1 = 1", []
        if district:
            sql += " AND district = ?"
            params.append(district)
        if state:
            sql += " AND state = ?"
            params.append(state)
        rows = self.db.query(sql + " ORDER BY last_seen DESC LIMIT ?", (*params, limit))
        return [self.engine.message(r) for r in rows]

    def get(self, alert_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if not rows:
            return None
        if rows[0]["type"] != incidents.INCIDENT:
            return self.engine.message(rows[0])
        boxes = incidents.boxes(self.db.query(incidents.MEMBERS, (alert_id,)))  # every box
        return self.engine.message(rows[0], boxes)


class Webhooks:
    """Texts queued for each group bot (``cloud.alerts.webhooks`` posts them)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def pending(self, bot: str, limit: int) -> list[tuple[int, str, str]]:
        rows = self.db.query(
            "SELECT id, alert, text FROM webhook_queue WHERE bot = ? AND sent IS NULL "
            "ORDER BY id LIMIT ?",
            (bot, limit),
        )
        return [(r["id"], r["alert"], r["text"]) for r in rows]

    def sent(self, ids: list[int]) -> None:
        now = time.time()
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE webhook_queue SET sent = ? WHERE id = ?", ((now, i) for i in ids)
            )

    def failed(self, ids: list[int]) -> None:
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE webhook_queue SET attempts = attempts + 1 WHERE id = ?", ((i,) for i in ids)
            )
