"""A site as the console shows it to its district's supervisor: its grade, licences and
health certificates with their expiry, its boxes and whether they are online, the morning
checks and disinfection records (names and temperatures: officers may see them), its tickets
and its recent alerts."""

from __future__ import annotations

import json
from typing import Any

from cloud.console.accounts import Session
from cloud.console.readings import readings
from cloud.db import Db

DAYS = 14


def site(db: Db, who: Session, name: str, now: float) -> dict[str, Any] | None:
    """What the page shows, or None when there is no such site or it is another district's."""
    rows = db.query("SELECT * FROM sites WHERE site = ?", (name[:64],))
    if not rows or not who.sees(rows[0]["district"]):
        return None
    since = now - DAYS * 86400
    records = db.query(
        "SELECT kind, ts, data FROM events WHERE site = ? AND kind IN"
        " ('morning_check', 'disinfection') AND received > ? ORDER BY received DESC LIMIT 200",
        (name, since),
    )
    tickets = db.query(
        "SELECT t.data, t.received FROM tickets t JOIN registry r ON r.name = t.device"
        " WHERE r.site = ? ORDER BY t.received DESC LIMIT 20",
        (name,),
    )
    return {
        "site": rows[0],
        "sensors": readings(db, name, now),
        "certs": db.query(
            "SELECT kind, holder, number, expires FROM certs WHERE site = ? ORDER BY expires",
            (name,),
        ),
        "devices": db.query(
            "SELECT device, state, last_seen FROM devices WHERE site = ? ORDER BY device", (name,)
        ),
        "records": [{**r, "data": json.loads(r["data"])} for r in records],
        "tickets": [{**json.loads(t["data"]), "received": t["received"]} for t in tickets],
        "alerts": db.query(
            "SELECT id, type, state, first_seen FROM alerts WHERE site = ?"
            " ORDER BY first_seen DESC LIMIT 20",
            (name,),
        ),
    }
