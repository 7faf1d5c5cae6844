"""What the alert engine does as time passes (once a second): escalate critical alerts left
unacknowledged and overdue steps, mark silent boxes offline, check certificates once a day,
and raise ``no_morning_check``. The engine holds one ``TimedChecks``, handed the engine
(``AlertEngine.tick`` calls its ``tick``)."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from cloud.alerts.tables import fetch, history, iso
from cloud.db.base import Conn
from cloud.outbox import queue_message
from shared.alerts import escalations_topic

if TYPE_CHECKING:
    from cloud.alerts.engine import AlertEngine

log = logging.getLogger("shian.alerts")


class TimedChecks:
    """What the engine does as time passes (handed the engine, which holds one)."""

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    def tick(self, conn: Conn, now: float) -> None:
        conn.lock("alerts")
        today = datetime.fromtimestamp(now, self.engine.tz).date()
        if today != self.engine.certs_checked:  # at start, then once a day
            self.engine.certificates.check(conn, today, now)
            self.engine.certs_checked = today
        self._morning_checks(conn, now)
        late = fetch(
            conn,
            "SELECT id FROM alerts WHERE state = 'open' AND severity = 'critical'"
            " AND escalated = 0 AND first_seen <= ?",
            (now - self.engine.s.escalate_after_s,),
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
        self.engine.incidents.tick(conn, now)
        self._silent(conn, now)

    def _silent(self, conn: Conn, now: float) -> None:
        """Online boxes not heard from for heartbeat_timeout_s go offline; not while the collector
        itself has no broker session, nor until it has had one that long (the boxes reconnect)."""
        timeout = self.engine.s.heartbeat_timeout_s
        if self.engine.connected_since is None or now - self.engine.connected_since < timeout:
            return
        sql = "SELECT device, site FROM devices WHERE state = 'online' AND last_seen < ?"
        if conn.dialect == "postgresql":
            sql += " FOR UPDATE SKIP LOCKED"  # a box being written now is not silent
        for dev in fetch(conn, sql, (now - timeout,)):
            conn.execute(
                "UPDATE devices SET state = 'offline', state_reason = 'silent', "
                "state_changed = ? WHERE device = ?",
                (now, dev["device"]),
            )
            self.engine.incidents.device_offline(
                conn,
                now,
                site=dev["site"],
                device=dev["device"],
                title=f"box {dev['device']} silent for {timeout:.0f} s",
            )

    def _morning_checks(self, conn: Conn, now: float) -> None:
        """A kitchen with no morning check by its site's time: one alert that day."""
        local = datetime.fromtimestamp(now, self.engine.tz)
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
                self.engine.raise_(
                    conn,
                    now,
                    site=site,
                    type="no_morning_check",
                    source=day,
                    title=f"no morning check (晨检) at {site} by {by} on {day}",
                )

    def _escalate(self, conn: Conn, alert_id: str, now: float, why: str) -> None:
        a = fetch(conn, "SELECT * FROM alerts WHERE id = ?", (alert_id,))[0]
        step = {"at": iso(now), "state": a["state"], "actor": "system", "note": f"escalated: {why}"}
        steps = [*history(a), step]
        conn.execute(
            "UPDATE alerts SET escalated = escalated + 1, escalated_at = ?, version = "
            "version + 1, history = ? WHERE id = ?",
            (now, json.dumps(steps), alert_id),
        )
        msg = self.engine.publish(conn, alert_id, now)
        queue_message(conn, escalations_topic(msg["district"]), json.dumps(msg), now)
        log.warning("alert %s escalated: %s", alert_id, why)
