"""A site's sensors as the console shows them: each sensor's last minute and a small plot of
the day (its per-minute means from ``sensor_minute`` events), and its open excursions."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from cloud.console.pages import CHINA, two
from cloud.db import Db
from shared.sparkline import sparkline


def readings(db: Db, site: str, now: float) -> list[dict[str, Any]]:
    """Per sensor: its kind, its last minute, today's (time, mean temperature) points."""
    midnight = datetime.fromtimestamp(now, CHINA).replace(hour=0, minute=0, second=0)
    start = midnight.timestamp()
    rows = db.query(  # the newest first: a site with many sensors loses its morning, not now
        "SELECT data FROM events WHERE site = ? AND kind = 'sensor_minute'"
        " AND received >= ? ORDER BY received DESC LIMIT 20000",
        (site, start),
    )
    minutes = []
    for r in rows:
        d = json.loads(r["data"])
        at = datetime.fromisoformat(d["minute"].replace("Z", "+00:00")).timestamp()
        if at >= start:  # by the minute measured, not when it arrived (a backlog)
            minutes.append((at, d))
    out: dict[str, dict[str, Any]] = {}
    for at, d in sorted(minutes, key=lambda m: m[0]):
        s = out.setdefault(d["sensor"], {"sensor": d["sensor"], "kind": d["kind"], "points": []})
        s["last"], s["at"] = d["values"], at
        if "temperature" in d["values"]:
            s["points"].append((at, float(d["values"]["temperature"]["mean"])))
    for s in out.values():
        s["day_start"] = start
    return sorted(out.values(), key=lambda s: s["sensor"])


def box(sensors: list[dict[str, Any]]) -> str:
    """The site page's box of sensors (nothing when the site has none)."""
    if not sensors:
        return ""
    e = html.escape
    rows = []
    for s in sensors:
        last = s["last"]
        t = last.get("temperature", {}).get("mean")
        h = last.get("humidity", {}).get("mean")
        now = (f"{t:.1f} °C" if t is not None else "") + (f" · {h:.0f} %" if h is not None else "")
        when = datetime.fromtimestamp(s["at"], CHINA).strftime("%H:%M")
        rows.append(
            f"<tr data-sensor='{e(s['sensor'])}'><td>{e(s['sensor'])}</td><td>{e(s['kind'])}</td>"
            f"<td class='last'>{e(now)} ({when})</td>"
            f"<td>{sparkline(s['points'], s['day_start'], label=s['sensor'])}</td></tr>"
        )
    names = (("传感器", "Sensor"), ("类别", "Kind"), ("最新", "Last"), ("今日曲线", "Today"))
    head = "".join(f"<th>{two(zh, en)}</th>" for zh, en in names)
    return (
        f"<div class='box'><h2>{two('温湿度', 'Temperatures')}</h2><table><thead><tr>{head}"
        f"</tr></thead><tbody id='sensors'>{''.join(rows)}</tbody></table></div>"
    )
