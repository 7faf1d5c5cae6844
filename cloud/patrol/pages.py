"""The patrol pages, phone first: an inspector's tasks, a visit's checklist, its report; and
the board where a supervisor or a leader gives patrols out. Photos are resized on the phone and
uploaded one by one by ``static/photos.js`` before the item's form is sent."""

from __future__ import annotations

import html
import json
from datetime import datetime
from typing import Any

from cloud.console.accounts import Session
from cloud.console.pages import CHINA, csrf, page, photo_input, photos, state_name, two, when

e = html.escape
TASK_STATES = {
    "assigned": ("待巡查", "To visit"),
    "in_progress": ("巡查中", "Under way"),
    "done": ("已完成", "Done"),
}
RESULTS = {"pass": ("合格", "Pass"), "fail": ("不合格", "Fail")}
HAZARD_ACTIONS = {
    "request_rectification": ("再次责令整改", "Request rectification again"),
    "verify": ("复查通过", "Verify and close"),
    "reopen": ("复查不合格，重新打开", "Not fixed: reopen"),
}
CSS = """
.task{display:block;background:#fff;margin:.6rem 0;padding:.8rem;border-radius:.4rem;
color:inherit;text-decoration:none;border-left:5px solid #1e3a5f}.task.late{border-color:#c53030}
.item{background:#fff;margin:.6rem 0;padding:.8rem;border-radius:.4rem}
.item.pass{border-left:5px solid #0e9f6e}.item.fail{border-left:5px solid #c53030}
.item label{margin-right:1rem;font-size:1.1rem}.item textarea{width:100%;box-sizing:border-box}
button.big{font-size:1.1rem;
padding:.6rem 1.2rem}.hazard{background:#fff7ed;padding:.6rem;margin-top:.4rem}
"""


def _patrol_page(title: str, body: str, who: Session) -> str:
    return page(title, f"<style>{CSS}</style>{body}<script src='/console/photos.js'></script>", who)


def mine(who: Session, tasks: list[dict[str, Any]], now: float) -> str:
    cards = []
    for t in tasks:
        late = t["state"] != "done" and t["due"] < now
        zh, en = TASK_STATES.get(t["state"], (t["state"], ""))
        overdue = " · " + two("已逾期", "Overdue") if late else ""
        cards.append(
            f"<a class='task{' late' if late else ''}' href='/console/patrol/{e(t['id'])}'"
            f" data-id='{e(t['id'])}'><b>{e(t['site'])}</b> · {two(zh, en)}<br>"
            f"{two('期限', 'Due')} {when(t['due'])}{overdue}"
            f"{' · ' + two('服务机构', 'Firm') + ' ' + e(t['firm']) if t['firm'] else ''}</a>"
        )
    body = "".join(cards) or f"<p>{two('没有巡查任务', 'No patrols')}</p>"
    return _patrol_page("巡查 Patrols", f"<h1>{two('我的巡查', 'My patrols')}</h1>{body}", who)


def _message(message: str) -> str:
    if not message:
        return ""
    cls = "error" if message.startswith("!") else "ok"
    return f"<p class='{cls}' id='message'>{e(message.lstrip('!'))}</p>"


def visit(who: Session, t: dict[str, Any], now: float, message: str = "") -> str:
    """The checklist of one visit: each item pass or fail, a note, photos."""
    c = t["checklist_of"]
    head = (
        f"<h1>{e(t['site_name'] or t['site'])}</h1>{_message(message)}"
        f"<p>{two(c.zh, c.en)} · {two('期限', 'Due')} {when(t['due'])}</p>"
    )
    if t["state"] == "done":
        return _patrol_page("巡查 Patrol", head + _report_link(t), who)
    items = []
    for i in t["items"]:
        item, r = i["item"], i["result"] or {}
        res = r.get("result", "")
        radios = "".join(
            f"<label><input type='radio' name='result' value='{v}' required"
            f"{' checked' if res == v else ''}> {two(zh, en)}</label>"
            for v, (zh, en) in RESULTS.items()
        )
        items.append(
            f"<form class='item {res}' id='i-{e(item.id)}' method='post' data-item='{e(item.id)}'"
            f" action='/console/patrol/{e(t['id'])}/items/{e(item.id)}'>{csrf(who)}"
            f"<p><b>{e(item.zh)}</b><br><span class='en'>{e(item.en)}</span></p><p>{radios}</p>"
            f"<textarea name='note' rows='2' maxlength='1000' placeholder='说明 note'>"
            f"{e(r.get('note', ''))}</textarea>{photo_input(kept=r.get('photos', []))}"
            f"<div class='thumbs saved'>{photos(r.get('photos', []))}</div>"
            f"<p><label>{two('整改期限（小时）', 'Deadline if failed (hours)')} <input name='due_h'"
            f" type='number' min='1' max='720' value='{int(r.get('due_h') or item.due_h)}'>"
            f"</label> <button>{two('保存', 'Save')}</button></p></form>"
        )
    done = sum(1 for i in t["items"] if i["result"])
    finish = (
        f"<form method='post' action='/console/patrol/{e(t['id'])}/finish' id='finish'>"
        f"{csrf(who)}<p>{done}/{len(t['items'])} {two('项已检查', 'items checked')}</p>"
        f"<button class='big'>{two('完成巡查并签署报告', 'Finish and sign the report')}</button>"
        "</form>"
    )
    return _patrol_page("巡查 Patrol", head + "".join(items) + finish, who)


def _report_link(t: dict[str, Any]) -> str:
    return (
        f"<p><a href='/console/patrol/{e(t['id'])}/report' id='report'>"
        f"{two('巡查报告', 'Patrol report')}</a></p>"
    )


def report(who: Session, t: dict[str, Any], now: float, message: str = "") -> str:
    """The visit's report: every item, and each hazard with its state and its loop's actions."""
    c = t["checklist_of"]
    rows = []
    for i in t["items"]:
        item, r, h = i["item"], i["result"] or {}, i["hazard"]
        zh, en = RESULTS.get(r.get("result", ""), ("未检查", "Not checked"))
        hazard = ""
        if h is not None:
            steps = json.loads(h["history"])
            last = steps[-1] if steps else {}
            shown = photos([p for s in steps for p in s.get("photos", [])])
            hazard = (
                f"<div class='hazard' data-hazard='{e(h['id'])}'>{two('隐患', 'Hazard')}: "
                f"<b class='hazard-state'>{state_name(h['state'])}</b> · {two('期限', 'Due')} "
                f"{when(h['due'])}<br>{e(last.get('actor', ''))}: {e(last.get('note', ''))}"
                f"<div class='thumbs'>{shown}</div>{_hazard_forms(who, t, h)}</div>"
            )
        rows.append(
            f"<div class='item {e(r.get('result', ''))}' data-item='{e(item.id)}'>"
            f"<b>{e(item.zh)}</b> <span class='en'>{e(item.en)}</span><br>"
            f"<b class='result'>{two(zh, en)}</b> {e(r.get('note', ''))}"
            f"<div class='thumbs'>{photos(r.get('photos', []))}</div>{hazard}</div>"
        )
    by = t["finished_by"] or t["inspector"] or t["firm"]
    site = e(t["site"])
    if who.role != "inspector":  # the site's page is the console's
        site = f"<a href='/console/sites/{site}'>{site}</a>"
    failed = [i for i in t["items"] if (i["result"] or {}).get("result") == "fail"]
    closed = sum(1 for i in failed if i["hazard"] and i["hazard"]["state"] == "closed")
    summary = (
        f"<p id='summary'>{len(t['items'])} {two('项', 'items')} · {len(failed)} "
        f"{two('项不合格', 'failed')} · {closed} {two('项隐患已闭环', 'hazards closed')}</p>"
    )
    head = (
        f"<h1>{two('巡查报告', 'Patrol report')}</h1>{_message(message)}<div class='box'>"
        f"<p>{two('单位', 'Site')}: {site} "
        f"{e(t['site_name'] or '')} · {e(t['district'])}</p><p>{two(c.zh, c.en)}</p>"
        f"<p>{two('检查人', 'Inspector')}: {e(by)}"
        f"{' (' + e(t['firm']) + ')' if t['firm'] else ''} · {two('开始', 'Began')} "
        f"{when(t['started'])} · {two('完成', 'Finished')} <span id='finished'>"
        f"{when(t['finished'])}</span></p><p>{two('任务下达', 'Assigned by')} "
        f"{e(t['assigned_by'])} {when(t['created'])}</p>{summary}</div>"
    )
    return _patrol_page("巡查报告 Patrol report", head + "".join(rows), who)


def _hazard_forms(who: Session, t: dict[str, Any], h: dict[str, Any]) -> str:
    if who.role not in ("inspector", "supervisor"):
        return ""
    wanted = {"rectified": ("verify", "reopen"), "open": ("request_rectification",)}
    out = []
    for action in wanted.get(h["state"], ()):
        zh, en = HAZARD_ACTIONS[action]
        due = (
            f"<label>{two('期限（小时）', 'Deadline (hours)')} <input name='due_h' type='number'"
            " min='1' max='720' value='24'></label>"
            if action == "request_rectification"
            else ""
        )
        out.append(
            f"<form method='post' data-action='{action}' action='/console/patrol/{e(t['id'])}"
            f"/hazards/{e(h['id'])}'>{csrf(who)}<input type='hidden' name='action' "
            f"value='{action}'><textarea name='note' rows='2' maxlength='1000' "
            f"placeholder='复查说明 note'></textarea>{photo_input()}{due}"
            f"<button>{two(zh, en)}</button></form>"
        )
    return "".join(out)


def _board_row(t: dict[str, Any], now: float) -> str:
    late = "overdue" if t["state"] != "done" and t["due"] < now else ""
    firm = f"({t['firm']})" if t["firm"] else ""
    return (
        f"<tr data-id='{e(t['id'])}'><td>{e(t['site'])}</td><td>{e(t['inspector'])}{e(firm)}</td>"
        f"<td>{e(t['checklist'])}</td><td class='{late}'>{when(t['due'])}</td>"
        f"<td>{two(*TASK_STATES.get(t['state'], (t['state'], '')))}</td><td><a href="
        f"'/console/patrol/{e(t['id'])}/report'>{two('报告', 'Report')}</a></td></tr>"
    )


def board(
    who: Session,
    tasks: list[dict[str, Any]],
    now: float,
    choices: dict[str, list[str]],
    message: str = "",
) -> str:
    """The district's patrols (the city's, for a leader) and the form that gives one out."""
    rows = "".join(_board_row(t, now) for t in tasks) or (
        f"<tr><td colspan='6'>{two('没有巡查任务', 'No patrols')}</td></tr>"
    )

    def options(name: str, blank: bool = True) -> str:
        opts = "".join(f"<option>{e(v)}</option>" for v in choices.get(name, []))
        return ("<option value=''>—</option>" if blank else "") + opts

    tomorrow = datetime.fromtimestamp(now + 3 * 86400, CHINA).strftime("%Y-%m-%d")
    form = (
        f"<form method='post' action='/console/patrols' class='box' id='assign'>{csrf(who)}"
        f"<h2>{two('下达巡查任务', 'Give out a patrol')}</h2>"
        f"{two('单位', 'Site')} <select name='site' required>{options('sites', False)}</select> "
        f"{two('检查人', 'Inspector')} <select name='inspector'>{options('inspectors')}</select> "
        f"{two('或服务机构', 'or firm')} <select name='firm'>{options('firms')}</select> "
        f"{two('检查表', 'Checklist')} <select name='checklist'>{options('checklists')}</select> "
        f"{two('期限', 'Due')} <input type='date' name='due' value='{tomorrow}' required> "
        f"<button>{two('下达', 'Assign')}</button></form>"
    )
    head = "".join(
        f"<th>{two(zh, en)}</th>"
        for zh, en in (("单位", "Site"), ("检查人", "Inspector"), ("检查表", "Checklist"),
                       ("期限", "Due"), ("状态", "State"), ("报告", "Report"))
    )  # fmt: skip
    return page(
        "巡查 Patrols",
        f"<h1>{two('巡查任务', 'Patrols')}</h1>{_message(message)}{form}"
        f"<table><thead><tr>{head}</tr></thead><tbody id='patrols'>{rows}</tbody></table>",
        who,
    )
