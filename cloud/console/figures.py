"""The console's figures, per district and week (Monday to Sunday, China time): violations by
type, the share of rectifications done by their deadline, the median time to acknowledge and
to rectify, boxes that went offline, sites without a morning check; and rankings. All from the
alerts and their timelines, as the collector stored them."""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from cloud.console.accounts import Session
from cloud.db import Db
from cloud.site_page import VIOLATIONS

CHINA = timezone(timedelta(hours=8))
WEEK_S = 7 * 86400
OFFLINE = {"device_offline", "district_outage"}


def week_of(ts: float) -> datetime:
    """The Monday 00:00 (China time) that starts the week holding ``ts``."""
    d = datetime.fromtimestamp(ts, CHINA)
    return (d - timedelta(days=d.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)


def _ts(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass
class Week:
    district: str
    week: str
    violations: Counter[str] = field(default_factory=Counter)
    rectified: int = 0
    on_time: int = 0
    ack_s: list[float] = field(default_factory=list)
    rectify_s: list[float] = field(default_factory=list)
    offline: int = 0
    no_morning_check: int = 0

    def row(self) -> dict[str, Any]:
        def median_h(xs: list[float]) -> float | None:
            return round(statistics.median(xs) / 3600, 2) if xs else None

        return {
            "district": self.district,
            "week": self.week,
            "violations": sum(self.violations.values()),
            "by_type": dict(self.violations),
            "on_time_share": round(self.on_time / self.rectified, 3) if self.rectified else None,
            "median_ack_h": median_h(self.ack_s),
            "median_rectify_h": median_h(self.rectify_s),
            "offline": self.offline,
            "no_morning_check": self.no_morning_check,
        }


def weeks_shown(weeks: int, now: float) -> list[str]:
    """The Mondays of the last ``weeks`` weeks, this one included, oldest first."""
    last = week_of(now)
    return [(last - timedelta(weeks=k)).strftime("%Y-%m-%d") for k in range(weeks - 1, -1, -1)]


def weekly(db: Db, who: Session, weeks: int, now: float) -> list[dict[str, Any]]:
    """One row per district and week, the last ``weeks`` weeks (this one included)."""
    start = week_of(now) - timedelta(weeks=weeks - 1)
    sql = "SELECT district, type, first_seen, history FROM alerts WHERE first_seen >= ?"
    params: list[Any] = [start.timestamp()]
    if who.role != "leader":
        sql += " AND district = ?"
        params.append(who.district)
    table: dict[tuple[str, str], Week] = {}
    for a in db.query(sql, params):
        wk = week_of(a["first_seen"]).strftime("%Y-%m-%d")
        w = table.setdefault((a["district"], wk), Week(a["district"], wk))
        if a["type"] in VIOLATIONS:
            w.violations[a["type"]] += 1
        elif a["type"] in OFFLINE:
            w.offline += 1
        elif a["type"] == "no_morning_check":
            w.no_morning_check += 1
        _timeline(w, a["first_seen"], json.loads(a["history"] or "[]"))
    return [table[k].row() for k in sorted(table)]


def _timeline(w: Week, first_seen: float, steps: list[dict[str, Any]]) -> None:
    ack = requested = due = None
    for s in steps:
        at = _ts(s.get("at"))
        if at is None:
            continue
        if s.get("state") == "acknowledged" and ack is None:
            ack = at
            w.ack_s.append(max(0.0, at - first_seen))
        elif s.get("state") == "rectification_requested" and requested is None:
            requested, due = at, _ts(s.get("due"))
        elif s.get("state") == "rectified" and requested is not None:
            w.rectify_s.append(max(0.0, at - requested))
            if due is not None:
                w.rectified += 1
                w.on_time += at <= due
            requested = None


def rankings(rows: list[dict[str, Any]], db: Db, who: Session, now: float) -> dict[str, Any]:
    """Districts by the share of rectifications on time (then fewest violations) over the
    weeks shown; the sites with the most violations in the last four weeks."""
    per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        p = per[r["district"]]
        p["violations"] += r["violations"]
        if r["on_time_share"] is not None:
            p["shares"] += r["on_time_share"]
            p["weeks"] += 1

    def share(p: dict[str, float]) -> float | None:
        return round(p["shares"] / p["weeks"], 3) if p["weeks"] else None

    order = sorted(per, key=lambda d: (-(share(per[d]) or 0.0), per[d]["violations"], d))
    districts = [
        {"district": d, "violations": int(per[d]["violations"]), "on_time_share": share(per[d])}
        for d in order
    ]
    sql = (
        "SELECT site, district, count(*) AS n FROM alerts WHERE first_seen >= ? AND type IN ("
        + ", ".join("?" * len(VIOLATIONS))
        + ")"
    )
    params: list[Any] = [now - 4 * WEEK_S, *VIOLATIONS]
    if who.role != "leader":
        sql += " AND district = ?"
        params.append(who.district)
    sites = db.query(sql + " GROUP BY site, district ORDER BY n DESC, site LIMIT 20", params)
    return {"districts": districts, "sites": sites}


CSV_COLUMNS = ["district", "week", "violations", "on_time_share", "median_ack_h",
               "median_rectify_h", "offline", "no_morning_check"]  # fmt: skip
