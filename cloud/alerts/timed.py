"""What the alert engine does as time passes (once a second): escalate critical alerts left
unacknowledged and overdue steps, mark silent boxes offline, check certificates once a day,
and raise ``no_morning_check``. A mixin of ``AlertEngine``."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import date, datetime, tzinfo
from typing import Any

from cloud.alerts import certs
from cloud.alerts.tables import fetch, history, iso
from cloud.config import AlertSettings
from shared.alerts import escalations_topic

log = logging.getLogger("shian.alerts")


class TimedChecks:
    s: AlertSettings
    tz: tzinfo
    certs_checked: date | None

    def raise_(
        self,
        conn: sqlite3.Connection,
        now: float,
        *,
        site: str,
        type: str,
        source: str,
        title: str,
        device: str | None = None,
        camera: str | None = None,
        snapshot: str | None = None,
        severity: str | None = None,
    ) -> dict[str, Any]:
        raise NotImplementedError

    def clear(
        self, conn: sqlite3.Connection, now: float, site: str, type: str, source: str, why: str
    ) -> None:
        raise NotImplementedError

    def publish(self, conn: sqlite3.Connection, alert_id: str, now: float) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _outbox(
        conn: sqlite3.Connection, topic: str, payload: str, now: float, retain: bool = False
    ) -> None:
        raise NotImplementedError

    # -- time: escalation and deadlines --------------------------------------------------------
    def tick(self, conn: sqlite3.Connection, now: float) -> None:
        today = datetime.fromtimestamp(now, self.tz).date()
        if today != self.certs_checked:  # at start, then once a day
            certs.check(self, conn, today, now)
            self.certs_checked = today
        self._morning_checks(conn, now)
        late = fetch(
            conn,
            "SELECT id FROM alerts WHERE state = 'open' AND severity = 'critical'"
            " AND escalated = 0 AND first_seen <= ?",
            (now - self.s.escalate_after_s,),
        )
        for a in late:
            self._escalate(conn, a["id"], now, "critical and not acknowledged in time")
        overdue = fetch(
            conn,
            "SELECT id, state FROM alerts WHERE state IN "
            "('rectification_requested', 'rectified') AND due IS NOT NULL AND due < ?"
            " AND (escalated_at IS NULL OR escalated_at < due)",
            (now,),
        )
        for a in overdue:
            step = "rectification" if a["state"] == "rectification_requested" else "verification"
            self._escalate(conn, a["id"], now, f"{step} overdue")
        silent = fetch(
            conn,
            "SELECT device, site FROM devices WHERE state = 'online' AND last_seen < ?",
            (now - self.s.heartbeat_timeout_s,),
        )
        for dev in silent:
            conn.execute(
                "UPDATE devices SET state = 'offline', state_reason = 'silent', "
                "state_changed = ? WHERE device = ?",
                (now, dev["device"]),
            )
            self.raise_(
                conn,
                now,
                site=dev["site"],
                device=dev["device"],
                type="device_offline",
                source=dev["device"],
                title=f"box {dev['device']} silent for {self.s.heartbeat_timeout_s:.0f} s",
            )

    def _morning_checks(self, conn: sqlite3.Connection, now: float) -> None:
        """A kitchen with no morning check by its site's time: one alert that day."""
        local = datetime.fromtimestamp(now, self.tz)
        hhmm, day = local.strftime("%H:%M"), local.date().isoformat()
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        for site, by in conn.execute(
            "SELECT site, morning_check_by FROM sites WHERE morning_check_by != ''"
        ).fetchall():
            if (
                hhmm < by
                or conn.execute(
                    "SELECT 1 FROM alerts WHERE key = ?", (f"{site}|no_morning_check|{day}",)
                ).fetchone()
            ):
                continue
            done = conn.execute(
                "SELECT 1 FROM events WHERE site = ? AND kind = 'morning_check'"
                " AND received >= ? LIMIT 1",
                (site, midnight),
            ).fetchone()
            if not done:
                self.raise_(
                    conn,
                    now,
                    site=site,
                    type="no_morning_check",
                    source=day,
                    title=f"no morning check (晨检) at {site} by {by} on {day}",
                )

    def _escalate(self, conn: sqlite3.Connection, alert_id: str, now: float, why: str) -> None:
        a = fetch(conn, "SELECT * FROM alerts WHERE id = ?", (alert_id,))[0]
        step = {"at": iso(now), "state": a["state"], "actor": "system", "note": f"escalated: {why}"}
        steps = [*history(a), step]
        conn.execute(
            "UPDATE alerts SET escalated = escalated + 1, escalated_at = ?, version = "
            "version + 1, history = ? WHERE id = ?",
            (now, json.dumps(steps), alert_id),
        )
        msg = self.publish(conn, alert_id, now)
        self._outbox(conn, escalations_topic(msg["district"]), json.dumps(msg), now)
        log.warning("alert %s escalated: %s", alert_id, why)
