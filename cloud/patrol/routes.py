"""The patrol routes, behind the console's own guard (session, CSRF, the inspector's paths).

GET  /patrol                               the inspector's phone (to /console/patrol)
GET  /console/patrol                       an inspector's tasks
GET  /console/patrol/{task}                a visit: its checklist
POST /console/patrol/{task}/items/{item}   one item: pass or fail, note, photos
POST /console/patrol/{task}/finish         sign the report; failed items become hazards
GET  /console/patrol/{task}/report         the visit's report, its hazards and their loop
POST /console/patrol/{task}/hazards/{id}   verify, reopen, request again (note, photos)
GET  /console/patrols, POST /console/patrols   the district's patrols; give one out
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from cloud.console.accounts import Accounts, Session
from cloud.console.pages import CHINA
from cloud.patrol import pages
from cloud.patrol.tasks import Patrols
from cloud.webforms import client_address as address
from cloud.webforms import hours as deadline

Handler = Callable[[Request, Session], Awaitable[Response]]
NOT_FOUND = "no such patrol 没有这个巡查任务"


def due_date(text: str) -> float:
    """A form's due date (YYYY-MM-DD, China time) as the end of that day; ValueError."""
    try:
        day = datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=CHINA)
    except ValueError:
        raise ValueError("the due date is YYYY-MM-DD") from None
    return (day + timedelta(days=1)).timestamp() - 1


Guard = Callable[..., Callable[[Request], Awaitable[Response]]]
"""The console's ``page``: a handler behind the session, CSRF and the inspector's paths."""


def routes(patrols: Patrols, accounts: Accounts, page: Guard) -> list[Route]:
    db = patrols.store.db

    def audit(who: Session, request: Request, action: str, target: str, detail: str) -> None:
        accounts.audit(who.name, action, target, detail, address(request), time.time())

    async def mine(request: Request, who: Session) -> Response:
        if who.role != "inspector":
            return RedirectResponse("/console/patrols", status_code=303)
        return HTMLResponse(pages.mine(who, patrols.tasks(who), time.time()))

    async def visit(request: Request, who: Session) -> Response:
        t = patrols.task(who, request.path_params["task"])
        if t is None:
            return PlainTextResponse(NOT_FOUND, status_code=404)
        if who.role != "inspector" or t["checklist_of"] is None:
            return RedirectResponse(f"/console/patrol/{t['id']}/report", status_code=303)
        return HTMLResponse(pages.visit(who, t, time.time()))

    async def refused(request: Request, who: Session, why: str, report: bool = False) -> Response:
        audit(who, request, "patrol_refused", request.url.path[-64:], why)
        t = patrols.task(who, request.path_params["task"])
        if t is None or t["checklist_of"] is None:
            return PlainTextResponse(f"{NOT_FOUND}: {why}", status_code=404)
        if report or t["state"] == "done" or who.role != "inspector":
            return HTMLResponse(pages.report(who, t, time.time(), f"!{why}"), status_code=409)
        return HTMLResponse(pages.visit(who, t, time.time(), f"!{why}"), status_code=409)

    async def record(request: Request, who: Session) -> Response:
        f: dict[str, str] = request.state.form
        task, item = request.path_params["task"], request.path_params["item"]
        try:
            due_h = deadline(f.get("due_h", ""))
            patrols.record(who, task, item, f.get("result", ""), f.get("note", ""),
                           f.get("photos", ""), time.time(), due_h)  # fmt: skip
        except ValueError as exc:
            return await refused(request, who, str(exc))
        audit(who, request, f"patrol_{f.get('result')}", task, item)
        return RedirectResponse(f"/console/patrol/{task}#i-{item}", status_code=303)

    async def finish(request: Request, who: Session) -> Response:
        task = request.path_params["task"]
        try:
            hazards = patrols.finish(who, task, time.time())
        except ValueError as exc:
            return await refused(request, who, str(exc))
        audit(who, request, "patrol_finished", task, f"{len(hazards)} hazard(s)")
        return RedirectResponse(f"/console/patrol/{task}/report", status_code=303)

    async def report(request: Request, who: Session) -> Response:
        t = patrols.task(who, request.path_params["task"])
        if t is None or t["checklist_of"] is None:
            return PlainTextResponse(NOT_FOUND, status_code=404)
        return HTMLResponse(pages.report(who, t, time.time()))

    async def hazard(request: Request, who: Session) -> Response:
        f: dict[str, str] = request.state.form
        task, alert = request.path_params["task"], request.path_params["alert"]
        action = f.get("action", "")
        try:
            patrols.act_on_hazard(who, task, alert, action, f.get("note", ""),
                                  f.get("photos", ""), time.time(),
                                  deadline(f.get("due_h", "")))  # fmt: skip
        except ValueError as exc:
            return await refused(request, who, str(exc), report=True)
        audit(who, request, action[:32], alert, f.get("note", ""))
        t = patrols.task(who, task)
        assert t is not None  # it was there a moment ago; tasks are never deleted
        zh, en = pages.HAZARD_ACTIONS[action]
        return HTMLResponse(pages.report(who, t, time.time(), f"{zh} {en}: ok"))

    def choices(who: Session) -> dict[str, list[str]]:
        scope = ("", ()) if who.role == "leader" else (" WHERE district = ?", (who.district,))
        sites = [r["site"] for r in db.query(f"SELECT site FROM sites{scope[0]} ORDER BY site"
                                             " LIMIT 5000", scope[1])]  # fmt: skip
        people = db.query("SELECT name, firm FROM supervisors WHERE role = 'inspector'"
                          " ORDER BY name")  # fmt: skip
        return {
            "sites": sites,
            "inspectors": [p["name"] for p in people],
            "firms": sorted({p["firm"] for p in people if p["firm"]}),
            "checklists": sorted(patrols.checklists),
        }

    async def board(request: Request, who: Session) -> Response:
        return HTMLResponse(pages.board(who, patrols.tasks(who), time.time(), choices(who)))

    async def assign(request: Request, who: Session) -> Response:
        f: dict[str, str] = request.state.form
        now = time.time()
        try:
            task = patrols.assign(who, f.get("site", ""), due_date(f.get("due", "")), now,
                                  inspector=f.get("inspector", ""), firm=f.get("firm", ""),
                                  checklist=f.get("checklist", ""))  # fmt: skip
        except ValueError as exc:
            audit(who, request, "assign_refused", f.get("site", ""), str(exc))
            page_ = pages.board(who, patrols.tasks(who), now, choices(who), f"!{exc}")
            return HTMLResponse(page_, status_code=409)
        audit(who, request, "patrol_assigned", task, f.get("site", ""))
        page_ = pages.board(who, patrols.tasks(who), now, choices(who), "下达 Assigned: ok")
        return HTMLResponse(page_)

    return [
        Route("/patrol", lambda _: RedirectResponse("/console/patrol", status_code=303)),
        Route("/console/patrol", page(mine)),
        Route("/console/patrols", page(board)),
        Route("/console/patrols", page(assign), methods=["POST"]),
        Route("/console/patrol/{task}", page(visit)),
        Route("/console/patrol/{task}/items/{item}", page(record), methods=["POST"]),
        Route("/console/patrol/{task}/finish", page(finish), methods=["POST"]),
        Route("/console/patrol/{task}/report", page(report)),
        Route("/console/patrol/{task}/hazards/{alert}", page(hazard), methods=["POST"]),
    ]
