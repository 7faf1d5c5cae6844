"""The console's pages, drawn on the server (Chinese first, with English); a small script
keeps the alert list live (``static/console.js``)."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from cloud.console.accounts import Session
from cloud.console.photos import MAX_PER_FORM
from cloud.console.queries import STATES, Filters
from cloud.site_page import STATES as STATE_NAMES
from cloud.site_page import VIOLATIONS

CHINA = timezone(timedelta(hours=8))
ACTIONS = {
    "ack": ("受理", "Acknowledge"),
    "request_rectification": ("责令整改", "Request rectification"),
    "verify": ("复查通过", "Verify and close"),
    "close": ("关闭", "Close"),
    "reopen": ("重新打开", "Reopen"),
}
CSS = """
body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;margin:0;background:#f3f4f6;color:#222}
header{background:#1e3a5f;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;
gap:.4rem 1rem;align-items:center}
header a{color:#fff}header button{color:#fff;background:none;border:1px solid #9ab;
border-radius:.3rem;padding:.2rem .5rem}main{padding:1rem;max-width:72rem;margin:0 auto}
.en{color:#777;font-size:.85em}header .en{color:#cdd}table{width:100%;border-collapse:collapse;
background:#fff}th,td{text-align:left;padding:.4rem;border-bottom:1px solid #e5e7eb;
vertical-align:top}tr.critical td:first-child{border-left:4px solid #c53030}
.overdue{color:#c53030;font-weight:bold}form.inline{display:inline}.box{background:#fff;
padding:1rem;margin:1rem 0;border-radius:.4rem}.error{background:#fde8e8;color:#9b1c1c;
padding:.6rem;border-radius:.3rem}.ok{background:#def7ec;color:#03543f;padding:.6rem}
img.evidence{max-width:100%;max-height:24rem}ol.timeline li{margin:.3rem 0}
.thumbs img{height:4rem;margin:.2rem;border-radius:.2rem}
"""


def two(zh: str, en: str) -> str:
    return f"{html.escape(zh)} <span class='en'>{html.escape(en)}</span>"


def when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, CHINA).strftime("%Y-%m-%d %H:%M")


def page(title: str, body: str, who: Session | None = None) -> str:
    top = ""
    if who is not None:
        scope = two("全市", "city") if who.role == "leader" else html.escape(who.district)
        links = (
            f"<a href='/console/patrol'>{two('巡查', 'Patrols')}</a>"
            if who.role == "inspector"
            else f"<a href='/console'>{two('告警', 'Alerts')}</a>"
            f"<a href='/console/patrols'>{two('巡查', 'Patrols')}</a>"
            f"<a href='/console/figures'>{two('统计', 'Figures')}</a>"
        )
        top = (
            f"<span>{html.escape(who.name)} · {scope}</span>{links}"
            f"<form class='inline' method='post' action='/console/logout'>{csrf(who)}"
            f"<button>{two('退出', 'Log out')}</button></form>"
        )
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)} · 食安监管</title><style>{CSS}</style></head><body>"
        f"<header><b>{two('食安监管平台', 'Shian supervision')}</b>{top}</header>"
        f"<main>{body}</main></body></html>"
    )


def photos(ids: list[str]) -> str:
    """Thumbnails of snapshots (a step's photos, a finding's)."""
    return "".join(f"<img alt='photo' src='/snap/{html.escape(p)}.jpg'>" for p in ids)


def photo_input(field: str = "photos", kept: list[str] | None = None) -> str:
    """A camera/file input whose pictures ``photos.js`` resizes, uploads and lists, by id, in
    the hidden ``field`` the form sends (after ``kept``: the photos it already has)."""
    value = html.escape(",".join(kept or []))
    return (
        f"<input type='hidden' name='{field}' value='{value}'>"
        f"<p><label>{two('照片', 'Photos')} <input type='file' accept='image/*' capture="
        f"'environment' multiple data-photos='{field}' data-max='{MAX_PER_FORM}'></label></p>"
        "<div class='thumbs'></div>"
    )


def csrf(who: Session) -> str:
    return f"<input type='hidden' name='csrf' value='{html.escape(who.csrf)}'>"


def login(message: str = "") -> str:
    err = f"<p class='error' id='error'>{html.escape(message)}</p>" if message else ""
    return page(
        "登录 Log in",
        f"<div class='box'><h1>{two('登录', 'Log in')}</h1>{err}"
        "<form method='post' action='/console/login'>"
        f"<p><label>{two('用户名', 'Name')}<br><input name='name' autocomplete='username'"
        " required></label></p>"
        f"<p><label>{two('密码', 'Password')}<br><input name='password' type='password'"
        " autocomplete='current-password' required></label></p>"
        f"<button>{two('登录', 'Log in')}</button></form></div>",
    )


def type_name(t: str) -> str:
    zh, en = VIOLATIONS.get(t, (t, ""))
    return two(zh, en)


def state_name(s: str) -> str:
    zh, en = STATE_NAMES.get(s, (s, ""))
    return two(zh, en)


def rows(alerts: list[dict[str, Any]], now: float) -> str:
    out = []
    for a in alerts:
        late = a["due"] is not None and a["due"] < now and a["state"] != "closed"
        due = f"<span class='{'overdue' if late else ''}'>{when(a['due'])}</span>"
        out.append(
            f"<tr class='{html.escape(a['severity'])}' data-id='{html.escape(a['id'])}'>"
            f"<td>{when(a['last_seen'])}</td><td><a href='/console/sites/{html.escape(a['site'])}'>"
            f"{html.escape(a['site'])}</a></td>"
            f"<td><a href='/console/alerts/{html.escape(a['id'])}'>{type_name(a['type'])}</a>"
            f"</td><td>{state_name(a['state'])}</td><td>{html.escape(a['severity'])}</td>"
            f"<td>{due}</td></tr>"
        )
    return "".join(out) or f"<tr><td colspan='6'>{two('没有告警', 'No alerts')}</td></tr>"


def alert_list(who: Session, f: Filters, alerts: list[dict[str, Any]], now: float, seq: int) -> str:
    """``seq``: the alerts' change counter when the list was read (its live updates go on
    from there)."""
    opts = "".join(
        f"<option value='{s}'{' selected' if s == f.state else ''}>{html.escape(s)}</option>"
        for s in ("", *STATES)
    )
    q = f.query()
    filters = (
        "<form method='get' action='/console' class='box'>"
        f"{two('状态', 'State')} <select name='state'>{opts}</select> "
        f"{two('类型', 'Type')} <input name='type' value='{html.escape(f.type)}' size='14'> "
        f"{two('单位', 'Site')} <input name='site' value='{html.escape(f.site)}' size='14'> "
        f"<label><input type='checkbox' name='overdue' value='1'{' checked' if f.overdue else ''}>"
        f" {two('已逾期', 'Overdue')}</label> <button>{two('筛选', 'Filter')}</button> "
        f"<a href='/console/export.csv?{html.escape(q)}' id='csv'>CSV</a> "
        f"<a href='/console/export.xlsx?{html.escape(q)}' id='xlsx'>Excel</a></form>"
    )
    head = "".join(
        f"<th>{two(zh, en)}</th>"
        for zh, en in (("时间", "Last seen"), ("单位", "Site"), ("类型", "Type"),
                       ("状态", "State"), ("级别", "Severity"), ("期限", "Due"))
    )  # fmt: skip
    return page(
        "告警 Alerts",
        f"<h1>{two('告警', 'Alerts')}</h1>{filters}"
        f"<table><thead><tr>{head}</tr></thead><tbody id='alerts' data-q='{html.escape(q)}'"
        f" data-seq='{int(seq)}'>"
        f"{rows(alerts, now)}</tbody></table><script src='/console/console.js'></script>",
        who,
    )


def detail(who: Session, a: dict[str, Any], actions: list[str], message: str = "") -> str:
    e = html.escape
    steps = "".join(
        f"<li>{e(s.get('at', ''))} · {state_name(s.get('state', ''))} · {e(s.get('actor', ''))}"
        + (f"<br>{e(s.get('note', ''))}" if s.get("note") else "")
        + (f"<div class='thumbs'>{photos(s['photos'])}</div>" if s.get("photos") else "")
        + "</li>"
        for s in json.loads(a["history"] or "[]")
    )
    snap = (
        f"<img class='evidence' alt='evidence' src='/snap/{e(a['snapshot'])}.jpg'>"
        if a["snapshot"]
        else ""
    )
    forms = "".join(_action_form(who, a["id"], act) for act in actions)
    note = f"<p class='{'error' if message.startswith('!') else 'ok'}' id='message'>" + (
        e(message.lstrip("!")) + "</p>" if message else "</p>"
    )
    return page(
        a["title"],
        f"<h1>{type_name(a['type'])} · <a href='/console/sites/{e(a['site'])}'>{e(a['site'])}</a>"
        f"</h1>{note if message else ''}"
        f"<div class='box'><p>{e(a['title'])}</p><p>{two('状态', 'State')}: "
        f"<b id='state'>{state_name(a['state'])}</b> · {two('期限', 'Due')}: {when(a['due'])}"
        f"</p>{snap}</div><div class='box'><h2>{two('处置记录', 'Timeline')}</h2>"
        f"<ol class='timeline'>{steps}</ol></div><div class='box'>{forms}</div>"
        "<script src='/console/photos.js'></script>",
        who,
    )


def _action_form(who: Session, alert_id: str, action: str) -> str:
    zh, en = ACTIONS[action]
    due = (
        f" {two('期限（小时）', 'Deadline (hours)')} <input name='due_h' type='number' min='1'"
        " max='720' value='24' size='4'>"
        if action == "request_rectification"
        else ""
    )
    return (
        f"<form method='post' action='/console/alerts/{html.escape(alert_id)}' "
        f"class='act' data-action='{action}'>{csrf(who)}"
        f"<input type='hidden' name='action' value='{action}'>"
        f"<input name='note' placeholder='说明 note' maxlength='1000' size='30'>{due} "
        f"{photo_input() if action in ('verify', 'reopen') else ''}"
        f"<button>{two(zh, en)}</button></form>"
    )


def figures(
    who: Session, weeks: list[str], rows: list[dict[str, Any]], ranks: dict[str, Any]
) -> str:
    e = html.escape
    head = "".join(
        f"<th>{two(zh, en)}</th>"
        for zh, en in (("区县", "District"), ("周", "Week"), ("违规", "Violations"),
                       ("按期整改率", "Rectified on time"),
                       ("受理用时中位（时）", "Median to ack, h"),
                       ("整改用时中位（时）", "Median to rectify, h"), ("设备离线", "Offline"),
                       ("未晨检", "No morning check"))
    )  # fmt: skip

    def cell(v: Any) -> str:
        if v is None:
            return "<td>—</td>"
        return f"<td>{e(f'{v:.0%}' if isinstance(v, float) and v <= 1 else str(v))}</td>"

    body = "".join(
        f"<tr><td>{e(r['district'])}</td><td>{e(r['week'])}</td><td>{r['violations']}</td>"
        + cell(r["on_time_share"])
        + f"<td>{r['median_ack_h'] if r['median_ack_h'] is not None else '—'}</td>"
        + f"<td>{r['median_rectify_h'] if r['median_rectify_h'] is not None else '—'}</td>"
        + f"<td>{r['offline']}</td><td>{r['no_morning_check']}</td></tr>"
        for r in rows
    )
    districts = "".join(
        f"<tr><td>{i}</td><td>{e(d['district'])}</td>{cell(d['on_time_share'])}"
        f"<td>{d['violations']}</td></tr>"
        for i, d in enumerate(ranks["districts"], 1)
    )
    sites = "".join(
        f"<tr><td>{i}</td><td>{e(s['site'])}</td><td>{e(s['district'])}</td><td>{s['n']}</td></tr>"
        for i, s in enumerate(ranks["sites"], 1)
    )
    data = json.dumps({"weeks": weeks, "rows": rows}).replace("<", "\\u003c")
    plots = "".join(
        f"<div class='box plot' id='{pid}' data-title='{e(title)}'></div>"
        for pid, title in (("plot-violations", "违规 Violations"),
                           ("plot-ontime", "按期整改率 Rectified on time"),
                           ("plot-rectify", "整改用时中位（时） Median hours to rectify"))
    )  # fmt: skip
    return page(
        "统计 Figures",
        "<link rel='stylesheet' href='/assets/uPlot.min.css'>"
        f"<h1>{two('统计', 'Figures')}</h1><p><a href='/console/figures.csv' id='csv'>CSV</a> "
        "<a href='/console/figures.xlsx' id='xlsx'>Excel</a></p>"
        f"{plots}<div class='box'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f"</table></div><div class='box'><h2>{two('区县排名', 'Districts, ranked')}</h2><table>"
        f"<tbody id='rank-districts'>{districts}</tbody></table><h2>"
        f"{two('违规最多的单位（近4周）', 'Sites with most violations, last 4 weeks')}</h2>"
        f"<table><tbody id='rank-sites'>{sites}</tbody></table></div>"
        f"<script type='application/json' id='figures'>{data}</script>"
        "<script src='/assets/uPlot.iife.min.js'></script>"
        "<script src='/console/figures.js'></script>",
        who,
    )


def site_page(who: Session, s: dict[str, Any], now: float, sensors: str = "") -> str:
    """``sensors``: the box of its sensors' readings (``readings.box``), drawn apart."""
    e = html.escape
    row = s["site"]
    today = datetime.fromtimestamp(now, CHINA).strftime("%Y-%m-%d")

    def table(head: tuple[tuple[str, str], ...], body: str, tid: str) -> str:
        th = "".join(f"<th>{two(zh, en)}</th>" for zh, en in head)
        return f"<table><thead><tr>{th}</tr></thead><tbody id='{tid}'>{body}</tbody></table>"

    certs = "".join(
        f"<tr class='{'overdue' if c['expires'] < today else ''}'><td>{e(c['kind'])}</td>"
        f"<td>{e(c['holder'])}</td><td>{e(c['number'])}</td><td>{e(c['expires'])}</td></tr>"
        for c in s["certs"]
    )
    devices = "".join(
        f"<tr><td>{e(d['device'])}</td><td>{e(d['state'])}</td><td>{when(d['last_seen'])}</td></tr>"
        for d in s["devices"]
    )
    records = "".join(
        f"<tr><td>{e(str(r['ts'])[:16])}</td><td>{e(r['kind'])}</td>"
        f"<td>{e(_record(r['kind'], r['data']))}</td></tr>"
        for r in s["records"]
    )
    tickets = "".join(
        f"<tr><td>{e(str(t.get('time', ''))[:16])}</td><td>{e(str(t.get('product', '')))}</td>"
        f"<td>{e(str(t.get('batch', '')))}</td><td>{e(str(t.get('origin', '')))}</td></tr>"
        for t in s["tickets"]
    )
    alerts = "".join(
        f"<tr><td>{when(a['first_seen'])}</td><td><a href='/console/alerts/{e(a['id'])}'>"
        f"{type_name(a['type'])}</a></td><td>{state_name(a['state'])}</td></tr>"
        for a in s["alerts"]
    )
    grade = row["grade"] or "—"
    return page(
        row["name"] or row["site"],
        f"<h1>{e(row['name'] or row['site'])}</h1><div class='box'><p>{e(row['site'])} · "
        f"{e(row['district'])} · {e(row['kind'] or '—')} · {two('等级', 'Grade')}: "
        f"<b id='grade'>{e(grade)}</b></p></div>"
        f"<div class='box'><h2>{two('证照', 'Licences and health certificates')}</h2>"
        + table((("类别", "Kind"), ("持有人", "Holder"), ("编号", "Number"),
                 ("有效期至", "Expires")), certs, "certs")
        + "</div>" + sensors + "<div class='box'>"
        + f"<h2>{two('设备', 'Boxes')}</h2>"
        + table((("设备", "Box"), ("状态", "State"), ("最后联系", "Last seen")), devices,
                "devices")
        + f"</div><div class='box'><h2>{two('晨检与消毒（近14天）', 'Checks, last 14 days')}</h2>"
        + table((("时间", "Time"), ("类别", "Kind"), ("记录", "Record")), records, "records")
        + f"</div><div class='box'><h2>{two('票据', 'Tickets')}</h2>"
        + table((("时间", "Time"), ("品名", "Product"), ("批次", "Batch"),
                 ("产地", "Origin")), tickets, "tickets")
        + f"</div><div class='box'><h2>{two('告警', 'Alerts')}</h2>"
        + table((("时间", "Seen"), ("类型", "Type"), ("状态", "State")), alerts, "site-alerts")
        + "</div>",
        who,
    )  # fmt: skip


def _record(kind: str, d: dict[str, Any]) -> str:
    if kind == "morning_check":
        fit = "fit 合格" if d.get("fit") else "not fit 不合格"
        return f"{d.get('staff', '')} {d.get('temperature', '')}°C {fit}"
    return f"{d.get('area', '')} {d.get('method', '')} {d.get('by', '')} {d.get('minutes', '')} min"


CENTRE_CSS = """
body{background:#0b1726;color:#e6edf5;margin:0;font-family:system-ui,'Noto Sans CJK SC',sans-serif}
.en{color:#8aa0b8;font-size:.8em}.wall{display:grid;grid-template-columns:2fr 1fr;gap:1rem;
padding:1rem;height:100vh;box-sizing:border-box}.panel{background:#13243a;border-radius:.5rem;
padding:.8rem;overflow:hidden}#screen{aspect-ratio:16/9;background:#000;display:flex;
align-items:center;justify-content:center}#screen img,#screen video{width:100%;height:100%;
object-fit:contain}#screen .view,#screen .screen{width:100%;height:100%;display:flex;
align-items:center;justify-content:center}.figures{display:grid;grid-template-columns:1fr 1fr;
gap:.5rem}.figures b{font-size:2rem;display:block}#ticker{list-style:none;padding:0;margin:0}
#ticker li{padding:.3rem 0;border-bottom:1px solid #23384f}.district{display:inline-block;
vertical-align:top;margin:0 .8rem .8rem 0;max-width:14rem}.district h3{margin:.2rem 0;
font-size:.9rem}.site{display:inline-block;width:.7rem;height:.7rem;margin:1px;border-radius:2px}
.ok{background:#2f855a}.alert{background:#e53e3e}.offline{background:#718096}
"""


def centre(who: Session) -> str:
    figures_ = "".join(
        f"<div><b id='today-{key}'>–</b>{two(zh, en)}</div>"
        for key, zh, en in (("alerts", "今日告警", "Alerts today"),
                            ("violations", "今日违规", "Violations today"),
                            ("open", "未闭环", "Open"), ("overdue", "已逾期", "Overdue"),
                            ("offline", "离线设备", "Boxes offline"))
    )  # fmt: skip
    scope = two("全市", "City") if who.role == "leader" else html.escape(who.district)
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        f"<title>指挥中心 Command centre</title><style>{CENTRE_CSS}</style></head><body>"
        "<div class='wall'><div><div class='panel'><h2>"
        f"{two('明厨亮灶', 'Open kitchens')} · <span id='screen-site'></span></h2>"
        "<div id='screen' data-site=''></div></div><div class='panel'>"
        f"<h2>{two('单位分布', 'Sites by district')} · {scope}</h2><div id='plan'></div></div>"
        f"</div><div><div class='panel'><h2>{two('今日', 'Today')}</h2><div class='figures'>"
        f"{figures_}</div></div><div class='panel'><h2>{two('实时告警', 'Live alerts')}</h2>"
        "<ul id='ticker'></ul></div></div></div>"
        "<script src='/console/live.js'></script><script src='/console/centre.js'></script>"
        "</body></html>"
    )
