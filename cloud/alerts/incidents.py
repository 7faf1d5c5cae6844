"""District incidents: when many boxes of one district go offline together (a power cut, a
failed uplink, a broker restart seen as silence), supervisors get one incident listing every
box, not an alert per box.

The first ``storm_devices - 1`` boxes of a district raise their own ``device_offline`` alerts
as usual; the next one within ``storm_window_s`` opens a ``district_outage`` incident that
takes them over (their own alerts close, saying so) and every later box joins it. The incident
is republished at most every ``incident_update_s`` while boxes join or come back, and closes
itself when the last one is back. The engine holds one ``Incidents``, handed the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud.alerts.tables import district_of, fetch, iso
from cloud.db.base import Conn

if TYPE_CHECKING:
    from cloud.alerts.engine import AlertEngine

INCIDENT = "district_outage"
SITE = "district"
"""The incident's site field (its topic: shian/v1/alerts/{district}/district)."""


def key(district: str) -> str:
    return f"{SITE}|{INCIDENT}|{district}"


MEMBERS = (
    "SELECT device, site, since, back FROM incident_devices WHERE incident = ?"
    " ORDER BY since, device"
)
"""Each box of an incident: when it went, and when it came back (``boxes`` formats it)."""


def boxes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"device": r["device"], "site": r["site"], "since": iso(r["since"]), "back": iso(r["back"])}
        for r in rows
    ]


def _open(conn: Conn, district: str) -> dict[str, Any] | None:
    rows = fetch(
        conn, "SELECT id FROM alerts WHERE key = ? AND state != 'closed'", (key(district),)
    )
    return rows[0] if rows else None


def _join(conn: Conn, inc_id: str, device: str, site: str, since: float) -> None:
    conn.execute(
        "INSERT INTO incident_devices (incident, device, site, since) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (incident, device) DO UPDATE SET back = NULL, since = CASE WHEN"
        " incident_devices.back IS NULL THEN incident_devices.since ELSE excluded.since END",
        (inc_id, device, site, since),
    )


class Incidents:
    """The engine's district incidents (handed the engine, which holds one)."""

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    def device_offline(self, conn: Conn, now: float, *, site: str, device: str, title: str) -> None:
        conn.lock("alerts")
        district = district_of(conn, site, self.engine.s.default_district)
        inc = _open(conn, district)
        if inc is None:
            recent = fetch(
                conn,
                "SELECT id, device, site, first_seen FROM alerts WHERE type = 'device_offline'"
                " AND district = ? AND state != 'closed' AND first_seen >= ?",
                (district, now - self.engine.s.storm_window_s),
            )
            if len({a["device"] for a in recent} - {device}) + 1 < self.engine.s.storm_devices:
                self.engine.raise_(
                    conn,
                    now,
                    site=site,
                    device=device,
                    type="device_offline",
                    source=device,
                    title=title,
                )
                return
            inc_id = self.engine.raise_(
                conn,
                now,
                site=SITE,
                type=INCIDENT,
                source=district,
                quiet=True,
                district=district,
                title=f"boxes offline in district {district}",
            )["id"]
            for a in recent:
                _join(conn, inc_id, a["device"], a["site"], a["first_seen"])
                self.engine.step(
                    conn, a["id"], "closed", "system", f"part of incident {inc_id}", now
                )
            _join(conn, inc_id, device, site, now)
            self.republish(conn, inc_id, now)
            return
        _join(conn, inc["id"], device, site, now)
        conn.execute(
            "UPDATE alerts SET dirty = 1, count = count + 1, last_seen = ? WHERE id = ?",
            (now, inc["id"]),
        )

    def device_online(self, conn: Conn, now: float, device: str) -> None:
        """The box is back: mark it in its incident; the incident closes with the last box."""
        sql = (
            "SELECT d.incident FROM incident_devices d JOIN alerts a ON a.id = d.incident"
            " WHERE d.device = ? AND d.back IS NULL AND a.state != 'closed'"
        )
        if not conn.execute(sql, (device,)).fetchone():
            return  # the common case, decided without the lock
        conn.lock("alerts")
        for (inc_id,) in conn.execute(sql, (device,)).fetchall():
            conn.execute(
                "UPDATE incident_devices SET back = ? WHERE incident = ? AND device = ?",
                (now, inc_id, device),
            )
            left = conn.execute(
                "SELECT count(*) FROM incident_devices WHERE incident = ? AND back IS NULL",
                (inc_id,),
            ).fetchone()[0]
            if left == 0:
                self.engine.step(conn, inc_id, "closed", "system", "every box is back online", now)
                conn.execute("UPDATE alerts SET dirty = 0 WHERE id = ?", (inc_id,))
            else:
                conn.execute("UPDATE alerts SET dirty = 1 WHERE id = ?", (inc_id,))

    def tick(self, conn: Conn, now: float) -> None:
        """Republish incidents that changed, at most every incident_update_s."""
        for a in fetch(
            conn,
            "SELECT id FROM alerts WHERE dirty = 1 AND state != 'closed'"
            " AND (published IS NULL OR published <= ?)",
            (now - self.engine.s.incident_update_s,),
        ):
            self.republish(conn, a["id"], now)

    def republish(self, conn: Conn, inc_id: str, now: float) -> None:
        row = fetch(conn, "SELECT district FROM alerts WHERE id = ?", (inc_id,))[0]
        gone, total = conn.execute(
            "SELECT count(*) - count(back), count(*) FROM incident_devices WHERE incident = ?",
            (inc_id,),
        ).fetchone()
        title = f"{gone} of {total} boxes offline in district {row['district']}"
        conn.execute(
            "UPDATE alerts SET title = ?, count = ?, version = version + 1, dirty = 0,"
            " published = ? WHERE id = ?",
            (title, max(1, int(total)), now, inc_id),
        )
        self.engine.publish(conn, inc_id, now)
