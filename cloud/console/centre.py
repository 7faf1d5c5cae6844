"""The command-centre wall's state: the live alert ticker, today's figures, every site of the
scope by district with its state, and the kitchens to show in turn (those with public live
views, else the latest evidence snapshot)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cloud.console.accounts import Session
from cloud.console.figures import CHINA
from cloud.db import Db
from cloud.live.views import views
from cloud.site_page import STATES, VIOLATIONS


def _scope(who: Session, column: str = "district") -> tuple[str, list[Any]]:
    return ("", []) if who.role == "leader" else (f" AND {column} = ?", [who.district])


def state(db: Db, who: Session, now: float, live: bool) -> dict[str, Any]:
    """``live``: the collector runs live views (then kitchens showing public views turn
    live on the wall)."""
    where, params = _scope(who)
    midnight = datetime.fromtimestamp(now, CHINA).replace(hour=0, minute=0, second=0).timestamp()
    ticker = [
        {
            "id": a["id"],
            "site": a["site"],
            "type": VIOLATIONS.get(a["type"], (a["type"], a["type"])),
            "state": STATES.get(a["state"], (a["state"], a["state"])),
            "at": datetime.fromtimestamp(a["last_seen"], CHINA).strftime("%H:%M"),
        }
        for a in db.query(
            f"SELECT id, site, type, state, last_seen FROM alerts WHERE 1 = 1{where}"
            " ORDER BY last_seen DESC LIMIT 12",
            params,
        )
    ]
    today = db.query(
        "SELECT count(*) AS n, sum(CASE WHEN type IN ("
        + ", ".join("?" * len(VIOLATIONS))
        + f") THEN 1 ELSE 0 END) AS violations FROM alerts WHERE first_seen >= ?{where}",
        [*VIOLATIONS, midnight, *params],
    )[0]
    open_ = db.query("SELECT site, type, due FROM alerts WHERE state != 'closed'" + where, params)
    offline = {
        r["site"]
        for r in db.query(
            "SELECT d.site FROM devices d JOIN sites s ON s.site = d.site"
            f" WHERE d.state = 'offline'{_scope(who, 's.district')[0]}",
            _scope(who, "s.district")[1],
        )
    }
    alerting = {a["site"] for a in open_ if a["type"] in VIOLATIONS}
    plan: dict[str, list[dict[str, str]]] = {}
    for s in db.query(f"SELECT site, name, district FROM sites WHERE 1 = 1{where} ORDER BY site",
                      params):  # fmt: skip
        mark = "alert" if s["site"] in alerting else "offline" if s["site"] in offline else "ok"
        plan.setdefault(s["district"], []).append({"site": s["site"], "state": mark})
    shown: list[str] = []
    if live:
        offering = db.query(
            "SELECT DISTINCT e.site FROM events e JOIN sites s ON s.site = e.site"
            f" WHERE e.kind = 'live_offer' AND e.received > ?{_scope(who, 's.district')[0]}"
            " LIMIT 50",
            [now - 30 * 86400, *_scope(who, "s.district")[1]],
        )
        shown = [r["site"] for r in offering if views(db, r["site"])]
    snaps = db.query(
        f"SELECT site, snapshot FROM alerts WHERE snapshot IS NOT NULL{where}"
        " ORDER BY last_seen DESC LIMIT 12",
        params,
    )
    rotation: list[dict[str, Any]] = [{"site": s, "live": True} for s in shown]
    rotation += [{"site": r["site"], "snapshot": r["snapshot"]} for r in snaps
                 if r["site"] not in shown]  # fmt: skip
    return {
        "ticker": ticker,
        "today": {
            "alerts": today["n"] or 0,
            "violations": today["violations"] or 0,
            "open": len(open_),
            "overdue": sum(1 for a in open_ if a["due"] is not None and a["due"] < now),
            "offline": len(offline),
        },
        "plan": plan,
        "rotation": rotation[:12],
    }
