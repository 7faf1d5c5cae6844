"""The alert engine: one open alert per site + type + source; repeats raise its count and
last-seen time; every change is written, in the same transaction, to the alert outbox (MQTT)
and to the webhook queues, so nothing is lost or doubled across a collector restart.

All methods take the open write transaction's connection and the time (a clock the caller,
or a test, controls).
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta, timezone
from typing import Any

from cloud.alerts import incidents
from cloud.alerts.certs import Certificates
from cloud.alerts.incidents import Incidents
from cloud.alerts.tables import devices_of, district_of, fetch, history, iso
from cloud.alerts.timed import TimedChecks
from cloud.config import AlertSettings
from cloud.db.base import Conn
from cloud.evidence import Evidence
from cloud.outbox import queue_message
from shared.alerts import (
    SEVERITY_RANK,
    AlertMessage,
    OutageBox,
    Reply,
    Step,
    alerts_topic,
    notice_topic,
    transition,
)
from shared.ids import uuid7
from shared.models import Envelope, Status
from shared.redact import redact

log = logging.getLogger("shian.alerts")

# event kind -> (alert type, data key naming the source, raise or clear)
SYSTEM = {
    "camera_offline": ("camera_offline", "camera", True),
    "camera_online": ("camera_offline", "camera", False),
    "scale_fault": ("scale_fault", None, None),
    "printer_fault": ("printer_fault", None, None),
    "camera_tampered": ("camera_tampered", "camera", None),
    "sensor_fault": ("sensor_fault", "sensor", None),
    "sensor_excursion": ("sensor_excursion", "sensor", None),
}


class AlertEngine:
    def __init__(self, settings: AlertSettings, web_base: str = "") -> None:
        self.s = settings
        self.web_base = (settings.public_base_url or web_base).rstrip("/")
        self.certs_checked: date | None = None
        self.tz = timezone(timedelta(hours=settings.timezone_offset_h))
        self.connected_since: float | None = 0.0
        """When the collector's broker session began (None while it has none): boxes are not
        called silent while the collector itself cannot hear them."""
        self._batch: set[str] | None = None
        """Alerts raised while a batch is being taken in: each is published once, at its end."""
        # its parts, each handed the engine: what they raise, close and publish goes through it
        self.incidents = Incidents(self)
        self.certificates = Certificates(self)
        self.timed = TimedChecks(self)

    # -- from stored events --------------------------------------------------------------------
    def on_batch(
        self, conn: Conn, events: list[Envelope], statuses: list[Status], now: float
    ) -> None:
        """Alerts from a batch of stored events and statuses. An alert raised several times in
        one batch (a box flushing a backlog) is published once, with its final count."""
        self._batch = set()
        try:
            self._take(conn, events, statuses, now)
            raised = self._batch
        finally:
            self._batch = None
        for alert_id in sorted(raised):
            self.publish(conn, alert_id, now)

    def _take(self, conn: Conn, events: list[Envelope], statuses: list[Status], now: float) -> None:
        for e in events:
            d = e.data
            if e.kind == "violation":
                self.raise_(
                    conn,
                    now,
                    site=e.site,
                    device=e.device,
                    type=d["type"],
                    source=d["camera"],
                    camera=d["camera"],
                    snapshot=d.get("snapshot"),
                    title=f"{d['type']} on {d['camera']} ({d['label']} {d['score']:.2f})",
                )
            elif e.kind in SYSTEM:
                atype, key, up = SYSTEM[e.kind]
                source = d[key] if key else e.device
                if key == "sensor":  # sensor names are each box's own: two boxes may both
                    source = f"{e.device}/{source}"  # have a fridge-1
                if up is None:  # state carried in the data
                    up = d.get("state") in ("lost", "raised")
                if up:
                    why = redact(str(d.get("reason") or d.get("problem") or ""))
                    if e.kind == "sensor_excursion":
                        why = (f"{d['value']:.1f} °C, outside {d.get('low')}..{d.get('high')} °C"
                               f" since {d.get('since')}")  # fmt: skip
                    self.raise_(
                        conn,
                        now,
                        site=e.site,
                        device=e.device,
                        type=atype,
                        source=source,
                        camera=d.get("camera"),
                        title=f"{atype} at {e.device}/{source}: {why}".strip(": "),
                    )
                else:
                    self.clear(conn, now, e.site, atype, source, f"{e.kind} reported")
            elif e.kind == "rectification":
                self.rectified_by_box(conn, now, e)
            elif e.kind == "stock_expiry":
                self._stock_expiry(conn, now, e)
            elif e.kind == "disinfection_cycle" and not d["proven"]:
                self.raise_(
                    conn, now, site=e.site, device=e.device, type="disinfection_incomplete",
                    source=d["sensor"], title=f"{d['sensor']}: held {d['held_s']:.0f} s at "
                    f"{d['min_c']:.0f} °C or more, of {d['hold_s']:.0f} s (peak {d['peak_c']} °C)",
                )  # fmt: skip
        for st in statuses:
            self.on_status(conn, now, st)

    def _stock_expiry(self, conn: Conn, now: float, e: Envelope) -> None:
        """A lot near its use-by date, past it (which ends its near-expiry alert), or gone."""
        d = e.data
        if d["state"] in ("expired", "cleared"):
            self.clear(conn, now, e.site, "stock_near_expiry", d["lot"], f"lot {d['state']}")
        if d["state"] == "cleared":
            self.clear(conn, now, e.site, "stock_expired", d["lot"], "lot used up or removed")
            return
        atype = "stock_expired" if d["state"] == "expired" else "stock_near_expiry"
        self.raise_(conn, now, site=e.site, device=e.device, type=atype, source=d["lot"],
                    title=f"{d['product']} {d['batch']}: {d['left']} {d['unit']} left, use by "
                    f"{d['expires']}")  # fmt: skip

    def on_status(self, conn: Conn, now: float, st: Status) -> None:
        if st.state == "offline" and st.reason == "will":
            self.incidents.device_offline(
                conn,
                now,
                site=st.site,
                device=st.device,
                title=f"box {st.device} went offline (connection lost)",
            )
        elif st.state == "online":
            self.clear(conn, now, st.site, "device_offline", st.device, "device online")
            self.incidents.device_online(conn, now, st.device)
        if st.reason != "will":  # a will carries its session's start, not the time now
            self._clock(conn, now, st.site, st.device, st.ts.timestamp() - now)
        if st.outbox is None:
            return
        prev = conn.execute(
            "SELECT dropped, rejected FROM device_health WHERE device = ?", (st.device,)
        ).fetchone() or (0, 0)
        lost = st.outbox.dropped - prev[0] + st.outbox.rejected - prev[1]
        conn.execute(
            "INSERT INTO device_health VALUES (?, ?, ?) ON CONFLICT (device) DO UPDATE SET"
            " dropped = excluded.dropped, rejected = excluded.rejected",
            (st.device, st.outbox.dropped, st.outbox.rejected),
        )
        trouble = st.outbox.disk_full or st.outbox.depth >= self.s.outbox_depth
        if lost > 0 or (trouble and not self._open(conn, st.site, "outbox_overflow", st.device)):
            full = "disk full: " if st.outbox.disk_full else ""
            self.raise_(
                conn,
                now,
                site=st.site,
                device=st.device,
                type="outbox_overflow",
                source=st.device,
                title=f"box {st.device}: {full}outbox {st.outbox.depth} "
                f"waiting, {st.outbox.dropped} dropped, {st.outbox.rejected} refused",
            )

    def _clock(self, conn: Conn, now: float, site: str, device: str, skew: float) -> None:
        """A box's clock against the collector's: the box's times are kept (with the time
        received beside them) but not believed, and a clock off by more than clock_skew_s is
        an alert. Behind is judged only once the collector has heard boxes live for a while."""
        since = self.connected_since
        settled = since is not None and now - since >= self.s.clock_settle_s
        if skew > self.s.clock_skew_s or (skew < -self.s.clock_skew_s and settled):
            if self._open(conn, site, "clock_skew", device):
                return  # open already: not published again with every heartbeat
            way = "ahead of" if skew > 0 else "behind"
            self.raise_(
                conn,
                now,
                site=site,
                device=device,
                type="clock_skew",
                source=device,
                title=f"box {device}: clock {abs(skew):.0f} s {way} the collector's",
            )
        elif abs(skew) <= self.s.clock_skew_s:
            self.clear(conn, now, site, "clock_skew", device, "clock back within the limit")

    @staticmethod
    def _open(conn: Conn, site: str, type: str, source: str) -> bool:
        """Whether this condition's alert is open already (a heartbeat need not raise it)."""
        key = f"{site}|{type}|{source}"
        sql = "SELECT id FROM alerts WHERE key = ? AND state != 'closed'"
        return bool(fetch(conn, sql, (key,)))

    # -- raising and clearing ------------------------------------------------------------------
    def raise_(
        self,
        conn: Conn,
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
        quiet: bool = False,
        district: str | None = None,
    ) -> dict[str, Any]:
        """Open an alert, or count a repeat of the open one; published unless ``quiet``
        (then the caller publishes it, and gets only its id)."""
        conn.lock("alerts")
        key = f"{site}|{type}|{source}"
        rows = fetch(conn, "SELECT * FROM alerts WHERE key = ? AND state != 'closed'", (key,))
        sev = severity or self.s.rule(type).severity
        if rows:
            a = rows[0]
            higher = SEVERITY_RANK[sev] > SEVERITY_RANK[a["severity"]]
            conn.execute(
                "UPDATE alerts SET count = count + 1, last_seen = ?, title = ?, version = version"
                " + 1, snapshot = coalesce(?, snapshot), severity = ? WHERE id = ?",
                (now, title, snapshot, sev if higher else a["severity"], a["id"]),
            )
            Evidence.pin(conn, a["id"], snapshot)
            return self._published(conn, a["id"], now, quiet)
        alert_id = str(uuid7())
        steps = [{"at": iso(now), "state": "open", "actor": "system", "note": title}]
        conn.execute(
            "INSERT INTO alerts (id, key, state, severity, type, district, site, device, camera,"
            " source, title, first_seen, last_seen, snapshot, history)"
            " VALUES (?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                alert_id,
                key,
                sev,
                type,
                district or district_of(conn, site, self.s.default_district),
                site,
                device,
                camera,
                source,
                title,
                now,
                now,
                snapshot,
                json.dumps(steps),
            ),
        )
        Evidence.pin(conn, alert_id, snapshot)
        log.info("alert %s (%s) at %s: %s", type, sev, site, title)
        return self._published(conn, alert_id, now, quiet)

    def _published(self, conn: Conn, alert_id: str, now: float, quiet: bool) -> dict[str, Any]:
        if quiet:
            return {"id": alert_id}
        if self._batch is not None:
            self._batch.add(alert_id)  # published at the end of the batch
            return {"id": alert_id}
        return self.publish(conn, alert_id, now)

    def clear(self, conn: Conn, now: float, site: str, type: str, source: str, why: str) -> None:
        """A system condition ended: its alert closes by itself."""
        if not self._open(conn, site, type, source):
            return  # the common case (every heartbeat), decided without the lock
        conn.lock("alerts")
        sql = "SELECT id, state FROM alerts WHERE key = ? AND state != 'closed'"
        for a in fetch(conn, sql, (f"{site}|{type}|{source}",)):
            self.step(conn, a["id"], "closed", "system", why, now)

    # -- the lifecycle -------------------------------------------------------------------------
    def act(
        self,
        conn: Conn,
        now: float,
        alert_id: str,
        action: str,
        actor: str,
        note: str = "",
        due_s: float | None = None,
        district: str | None = None,
        photos: list[str] | None = None,
    ) -> dict[str, Any]:
        """Apply an action; ValueError (refused, with the reason) changes nothing. ``photos``:
        snapshot ids that go with the step (kept while the alert is open)."""
        conn.lock("alerts")
        rows = fetch(conn, "SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if not rows:
            raise ValueError(f"no alert {alert_id}")
        a = rows[0]
        if district is not None and a["district"] != district:
            raise ValueError(f"alert {alert_id} is in district {a['district']}, not {district}")
        target = transition(a["state"], action)
        rule = self.s.rule(a["type"])
        due = None
        if target == "rectification_requested":
            due = now + (due_s or rule.plan_due_s)
        elif target == "rectified":
            due = now + rule.recheck_due_s
        for photo in photos or []:
            Evidence.pin(conn, alert_id, photo)
        return self.step(conn, alert_id, target, actor, note, now, due, action, photos)

    def step(
        self,
        conn: Conn,
        alert_id: str,
        state: str,
        actor: str,
        note: str,
        now: float,
        due: float | None = None,
        action: str = "",
        photos: list[str] | None = None,
    ) -> dict[str, Any]:
        conn.lock("alerts")
        a = fetch(conn, "SELECT * FROM alerts WHERE id = ?", (alert_id,))[0]
        step: dict[str, Any] = {"at": iso(now), "state": state, "actor": actor, "note": note}
        if state == "rectification_requested" and due is not None:
            step["due"] = iso(due)  # the deadline it was given: on time or not, later
        if photos:
            step["photos"] = list(photos)  # snapshot ids; URLs in the published message
        steps = [*history(a), step]
        if action == "reopen":
            clash = conn.execute(
                "SELECT id FROM alerts WHERE key = ? AND state != 'closed' AND id != ?",
                (a["key"], alert_id),
            ).fetchone()
            if clash:
                raise ValueError(f"cannot reopen: alert {clash[0]} is open for the same thing")
        conn.execute(
            "UPDATE alerts SET state = ?, due = ?, version = version + 1, history = ? WHERE id = ?",
            (state, due, json.dumps(steps), alert_id),
        )
        msg = self.publish(conn, alert_id, now)
        if (
            state in ("rectification_requested", "closed")
            or a["state"] == "rectification_requested"
        ):
            self._notify_site(conn, msg, now)
        return msg

    def rectified_by_box(self, conn: Conn, now: float, e: Envelope) -> None:
        d = e.data
        rows = fetch(conn, "SELECT site FROM alerts WHERE id = ?", (d["alert"],))
        reply: dict[str, Any]
        try:
            if not rows or rows[0]["site"] != e.site:
                raise ValueError(f"no alert {d['alert']} for site {e.site}")
            note = d.get("note", "")
            owner = conn.execute("SELECT device FROM snapshots WHERE id = ?",
                                 (d.get("photo") or "",)).fetchone()  # fmt: skip
            if owner is not None and owner[0] != e.device:  # someone else's picture: not its
                d = {**d, "photo": None}
            if d.get("photo"):
                note += f" (photo: {self.web_base}/snap/{d['photo']}.jpg)"
            photos = [d["photo"]] if d.get("photo") else None
            alert = self.act(conn, now, d["alert"], "rectify", f"device:{e.device}",
                             note.strip(), photos=photos)  # fmt: skip
            reply = Reply(id=e.id, ok=True, alert=alert).model_dump()
        except ValueError as exc:
            reply = Reply(id=e.id, ok=False, reason=str(exc)).model_dump()
        queue_message(conn, f"shian/v1/dev/{e.device}/cmd/reply", json.dumps(reply), now)

    def command(self, conn: Conn, now: float, supervisor: str, payload: bytes) -> None:
        """A supervisor's command; the reply (done, or refused with the reason) goes back on
        the supervisor's reply topic."""
        from pydantic import ValidationError

        from shared.alerts import SupervisorCommand, supervisor_topic

        reply: dict[str, Any]
        try:
            cmd = SupervisorCommand.model_validate_json(payload)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            reason = f"bad command: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            reply = Reply(id="", ok=False, reason=reason).model_dump()
        else:
            row = conn.execute(
                "SELECT district, role FROM supervisors WHERE name = ?", (supervisor,)
            ).fetchone()
            try:
                if row is None:
                    raise ValueError(f"unknown supervisor {supervisor}")
                if row[1] != "supervisor":  # a leader reads; an inspector works on patrol
                    raise ValueError(f"{supervisor} is a {row[1]}: only a supervisor acts")
                alert = self.act(
                    conn,
                    now,
                    cmd.alert,
                    cmd.action,
                    f"supervisor:{supervisor}",
                    cmd.note,
                    cmd.due_s,
                    district=row[0],
                )
                reply = Reply(id=cmd.id, ok=True, alert=alert).model_dump()
            except ValueError as exc:
                reply = Reply(id=cmd.id, ok=False, reason=str(exc)).model_dump()
        queue_message(conn, supervisor_topic(supervisor, "reply"), json.dumps(reply), now)

    def tick(self, conn: Conn, now: float) -> None:
        """Escalations, deadlines, silent boxes, certificates, morning checks (once a second)."""
        self.timed.tick(conn, now)

    # -- output --------------------------------------------------------------------------------
    def message(
        self, a: dict[str, Any], boxes: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        def url(snap_id: str) -> str:
            return f"{self.web_base}/snap/{snap_id}.jpg"

        snap = url(a["snapshot"]) if a["snapshot"] else None
        steps = [{**s, "photos": [url(p) for p in s.get("photos", [])]} for s in history(a)]
        return AlertMessage(
            id=a["id"],
            version=a["version"],
            state=a["state"],
            severity=a["severity"],
            type=a["type"],
            district=a["district"],
            site=a["site"],
            device=a["device"],
            camera=a["camera"],
            source=a["source"],
            title=a["title"],
            first_seen=iso(a["first_seen"]) or "",
            last_seen=iso(a["last_seen"]) or "",
            count=a["count"],
            due=iso(a["due"]),
            escalated=a["escalated"],
            snapshot_url=snap,
            history=[Step(**s) for s in steps],
            boxes=[OutageBox(**b) for b in boxes or []],
        ).model_dump(mode="json")

    def publish(self, conn: Conn, alert_id: str, now: float) -> dict[str, Any]:
        conn.lock("alerts")
        if self._batch is not None:
            self._batch.discard(alert_id)  # published now: not again at the end of the batch
        row = fetch(conn, "SELECT * FROM alerts WHERE id = ?", (alert_id,))[0]
        boxes = None
        if row["type"] == incidents.INCIDENT:
            boxes = incidents.boxes(fetch(conn, incidents.MEMBERS, (alert_id,)))
        msg = self.message(row, boxes)
        queue_message(conn, alerts_topic(msg["district"], msg["site"]), json.dumps(msg), now)
        for bot in self.s.webhooks:
            if (not bot.districts or msg["district"] in bot.districts) and SEVERITY_RANK[
                msg["severity"]
            ] >= SEVERITY_RANK[bot.min_severity]:
                conn.execute(
                    "INSERT INTO webhook_queue (bot, alert, text, created) VALUES (?, ?, ?, ?)",
                    (bot.name, alert_id, json.dumps(msg), now),
                )
        return msg

    def _notify_site(self, conn: Conn, msg: dict[str, Any], now: float) -> None:
        """Rectification notices for the business, retained on each of its boxes."""
        for device in devices_of(conn, msg["site"]):
            queue_message(conn, notice_topic(device, msg["id"]), json.dumps(msg), now, retain=True)
