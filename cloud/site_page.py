"""A site's public page, ``/k/{site}``: what a parent or a diner sees from the QR code at the
door (云监工). Mobile first, Chinese first with English, nothing loaded from elsewhere.

It shows what the public may know and nothing an attacker could use: the site's name and kind,
its food-safety grade as the regulator set it (faces), its licence and until when, whether
today's morning check and disinfection were done (done or not: never who, never a
temperature), and the violations of the last 30 days with their rectification state and
dates. Never a device, a camera, a URL, a snapshot, a person or a credential.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from cloud.db import Db
from cloud.live.sessions import NOTICES, LiveSessions
from cloud.sites import GRADES, KINDS

CHINA = timezone(timedelta(hours=8))
DAYS = 30
SYSTEM = {
    "device_offline", "district_outage", "camera_offline", "camera_tampered", "outbox_overflow",
    "scale_fault", "printer_fault", "clock_skew", "no_morning_check", "sensor_fault",
    "recall",  # a supplier's batch recalled: not the kitchen's conduct
    "stock_near_expiry",  # a reminder, not a fault
}  # fmt: skip
"""Alert types about the equipment, not the kitchen's conduct: not on the public page."""
VIOLATIONS = {
    "animal_in_kitchen": ("厨房出现动物", "Animal in the kitchen"),
    "rodent": ("鼠患", "Rodent"),
    "unattended_flame": ("明火无人看管", "Unattended flame"),
    "smoking": ("吸烟", "Smoking"),
    "person_after_hours": ("非工作时间有人", "Person after hours"),
    "stranger": ("陌生人进入", "Stranger"),
    "no_mask": ("未戴口罩", "No mask"),
    "no_chef_hat": ("未戴厨师帽", "No chef hat"),
    "no_uniform": ("未穿工作服", "No uniform"),
    "phone_use": ("操作时玩手机", "Phone use"),
    "uncovered_bin": ("垃圾桶未加盖", "Uncovered bin"),
    "hazard": ("巡查发现隐患", "Hazard found on patrol"),
    "sensor_excursion": ("冷藏冷冻温度超标", "Cold storage out of its range"),
    "disinfection_incomplete": ("消毒未达标", "Disinfection run too short or too cool"),
    "stock_expired": ("库存食品过期", "Expired food in stock"),
}
STATES = {
    "open": ("待处理", "Open"),
    "acknowledged": ("已受理", "Acknowledged"),
    "rectification_requested": ("整改中", "Being rectified"),
    "rectified": ("已整改，待复查", "Rectified, to be verified"),
    "closed": ("已闭环", "Closed"),
}
LICENCES = ("food_operation_licence", "business_licence")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, CHINA).strftime("%Y-%m-%d")


def _iso_day(value: Any) -> str:
    """A history step's time (ISO, UTC) as a day in China, or '' when there is none."""
    try:
        return (
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            .astimezone(CHINA)
            .strftime("%Y-%m-%d")
        )
    except ValueError:
        return ""


def record(db: Db, site: str, now: float) -> dict[str, Any] | None:
    """What the page shows of ``site``, or None if there is no such site."""
    rows = db.query("SELECT site, name, kind, grade, grade_set FROM sites WHERE site = ?", (site,))
    if not rows:
        return None
    s = rows[0]
    today = _day(now)
    done = {
        r["kind"]
        for r in db.query(
            "SELECT kind, received FROM events WHERE site = ? AND kind IN"
            " ('morning_check', 'disinfection') AND received > ?",
            (site, now - 2 * 86400),
        )
        if _day(r["received"]) == today
    }
    licence = None
    for kind in LICENCES:
        found = db.query(
            "SELECT number, expires FROM certs WHERE site = ? AND kind = ? ORDER BY expires DESC",
            (site, kind),
        )
        if found:
            licence = {"kind": kind, "number": found[0]["number"], "until": found[0]["expires"]}
            break
    violations = []
    for a in db.query(
        "SELECT type, state, first_seen, history FROM alerts WHERE site = ? AND first_seen > ?"
        " ORDER BY first_seen DESC",
        (site, now - DAYS * 86400),
    ):
        if a["type"] in SYSTEM or a["type"].endswith("_expiring"):
            continue
        steps = {h.get("state"): h.get("at") for h in json.loads(a["history"] or "[]")}
        violations.append(
            {
                "type": a["type"],
                "seen": _day(a["first_seen"]),
                "state": a["state"],
                "rectified": _iso_day(steps.get("rectified")),
                "closed": _iso_day(steps.get("closed")),
            }
        )
    return {
        "site": s["site"],
        "name": s["name"],
        "kind": s["kind"],
        "grade": s["grade"],
        "graded": _day(s["grade_set"]) if s["grade_set"] else "",
        "licence": licence,
        "today": {
            "date": today,
            "morning_check": "morning_check" in done,
            "disinfection": "disinfection" in done,
        },
        "violations": violations,
    }


def live_views(sessions: LiveSessions, site: str, now: float) -> list[dict[str, Any]]:
    """The site's public cameras as the page lists them: a number, a label, and the notice
    that stands in for the view now (off, outside hours, offline), if any."""
    out = []
    for v, notice in sessions.listing(site, now):  # one read of the site's offers
        zh, en = NOTICES[notice] if notice else ("", "")
        out.append({"n": v.n, "label": v.label, "notice": notice, "zh": zh, "en": en})
    return out


FACES = {  # drawn here, not an emoji font: the same face on every phone
    "good": "M30 60 Q50 82 70 60",
    "fair": "M32 64 Q50 74 68 64",
    "poor": "M32 66 L68 66",
}
COLOURS = {"good": "#1f9d55", "fair": "#d69e2e", "poor": "#c53030"}

CSS = """
body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC',sans-serif;margin:0;background:#f4f4f0;
color:#222;font-size:17px}main{max-width:34rem;margin:0 auto;padding:1rem}h1{font-size:1.4rem;
margin:.2rem 0}.en{color:#666;font-size:.85em}section{background:#fff;border-radius:.6rem;
padding:.8rem 1rem;margin:.8rem 0}.grade{display:flex;align-items:center;gap:1rem}
.grade svg{width:4.5rem;height:4.5rem}.yes{color:#1f9d55}.no{color:#c53030}
table{width:100%;border-collapse:collapse}td{padding:.35rem .2rem;border-bottom:1px solid #eee;
vertical-align:top}td:first-child{white-space:nowrap}
footer{color:#888;font-size:.8rem;text-align:center;margin:1rem 0}
.views{display:grid;gap:.6rem}.screen{background:#222;aspect-ratio:16/9;border-radius:.4rem;
display:flex;align-items:center;justify-content:center;color:#eee;overflow:hidden}
.screen video,.screen img{width:100%;height:100%;object-fit:contain}
.watch{font-size:1.1rem;padding:.6rem 1.2rem;border-radius:2rem;border:0;background:#1f9d55;
color:#fff}.watch .en,.screen .en{color:#ddd}.notice{padding:1rem;text-align:center}
.view p{margin:.3rem 0}
"""


def _live(r: dict[str, Any]) -> str:
    e = html.escape
    tiles = ""
    for v in r.get("live") or []:
        label = _two(v["label"], "") if v["label"] else _two(f"画面 {v['n']}", f"View {v['n']}")
        inside = (
            f"<div class='notice'>{_two(v['zh'], v['en'])}</div>"
            if v["notice"]
            else f"<button class='watch'>▶ {_two('观看', 'Watch')}</button>"
        )
        tiles += (
            f"<div class='view' data-n='{int(v['n'])}' data-notice='{e(v['notice'])}'>"
            f"<div class='screen'>{inside}</div><p>{label}</p></div>"
        )
    if not tiles:
        return ""
    return (
        f"<section id='live' data-site='{e(r['site'])}'><h2>{_two('实时后厨', 'Live kitchen')}"
        f"</h2><div class='views'>{tiles}</div></section><script src='/live/page.js'></script>"
    )


def _two(zh: str, en: str) -> str:
    e = html.escape
    return f"{e(zh)} <span class='en'>{e(en)}</span>"


def _face(grade: str) -> str:
    if grade not in FACES:
        return "<p>" + _two("暂未评级", "Not graded yet") + "</p>"
    c = COLOURS[grade]
    zh, en = GRADES[grade]
    return (
        f"<svg viewBox='0 0 100 100' role='img' aria-label='{en}'><circle cx='50' cy='50' "
        f"r='46' fill='{c}'/><circle cx='35' cy='40' r='6' fill='#fff'/><circle cx='65' cy='40'"
        f" r='6' fill='#fff'/><path d='{FACES[grade]}' stroke='#fff' stroke-width='6' "
        f"fill='none' stroke-linecap='round'/></svg><div><b>{_two(zh, en)}</b></div>"
    )


def render(r: dict[str, Any]) -> str:
    e = html.escape
    kind = KINDS.get(r["kind"], ("", ""))
    t = r["today"]

    def done(ok: bool) -> str:
        return (
            f"<span class='yes'>✓ {_two('已完成', 'done')}</span>"
            if ok
            else (f"<span class='no'>✗ {_two('未完成', 'not yet')}</span>")
        )

    lic = r["licence"]
    licence = (
        _two(f"许可证 {lic['number']}，有效期至 {lic['until']}",
             f"Licence {lic['number']}, valid until {lic['until']}")
        if lic else _two("未登记许可证", "No licence on record")
    )  # fmt: skip
    rows = (
        "".join(
            f"<tr><td>{e(v['seen'])}</td><td>{_two(*VIOLATIONS.get(v['type'], (v['type'], '')))}"
            f"</td><td>{_two(*STATES.get(v['state'], (v['state'], '')))}"
            + (f"<br><span class='en'>{e(v['rectified'])}</span>" if v["rectified"] else "")
            + "</td></tr>"
            for v in r["violations"]
        )
        or f"<tr><td>{_two('近30天无违规', 'No violation in the last 30 days')}</td></tr>"
    )
    graded = (
        f"<p class='en'>{_two('评定日期', 'graded')} {e(r['graded'])}</p>" if r["graded"] else ""
    )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{e(r['name'] or r['site'])} · 明厨亮灶</title><style>{CSS}</style></head><body>"
        f"<main><h1>{e(r['name'] or r['site'])}</h1><p>{_two(*kind) if kind[0] else ''}</p>"
        f"<section><h2>{_two('食品安全等级', 'Food-safety grade')}</h2>"
        f"<div class='grade'>{_face(r['grade'])}</div>{graded}</section>"
        f"<section><h2>{_two('证照', 'Licence')}</h2><p>{licence}</p></section>"
        f"<section><h2>{_two('今日', 'Today')} {e(t['date'])}</h2>"
        f"<p>{_two('晨检', 'Morning check')}: {done(t['morning_check'])}</p>"
        f"<p>{_two('消毒', 'Disinfection')}: {done(t['disinfection'])}</p></section>"
        f"<section><h2>{_two('近30天违规及整改', 'Violations, last 30 days')}</h2>"
        f"<table>{rows}</table></section>{_live(r)}"
        "<footer>食安 Shian · 明厨亮灶 open kitchen, by the market regulator</footer>"
        "</main></body></html>"
    )
