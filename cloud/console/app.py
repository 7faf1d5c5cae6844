"""The console's routes, under ``/console`` on the collector's web server.

    GET  /console/login, POST /console/login, POST /console/logout
    GET  /console                   the alert list (filters: state, type, site, overdue)
    GET  /console/rows              the list's rows (what the page's script fetches)
    GET  /console/stream            Server-Sent Events: "alerts" when any alert changed
    GET  /console/alerts/{id}       one alert: evidence, timeline, the loop's actions
    POST /console/alerts/{id}       an action (ack, request_rectification, verify, close, reopen)
    GET  /console/export.{csv,xlsx} the list as CSV (UTF-8 with a BOM) or an Excel workbook
    GET  /console/sites/{site}      a site: grade, certificates, boxes, checks, tickets, alerts
    GET  /console/centre            the command-centre wall (also /centre); its state as JSON
    GET  /console/figures           per district and week, with plots
    GET  /console/figures.{csv,xlsx}  the same figures as a file
    POST /console/photos            one photo (a raw JPEG, resized on the phone): its id
    /console/patrol..., /console/patrols, /patrol   patrols (cloud.patrol.routes)

Every page needs a session; every POST needs the session's CSRF token and, when the browser
sends one, an Origin of this host. A supervisor sees and acts in their district only: another
district's alert is "not found", by the page and by a direct request alike. An inspector
works from the patrol pages only.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from cloud.console import centre, figures, pages, photos, queries, readings, sites
from cloud.console.accounts import Accounts, LoginRefused, Session
from cloud.console.exports import export
from cloud.patrol import checklists
from cloud.patrol.routes import routes as patrol_routes
from cloud.patrol.tasks import Patrols
from cloud.store import Store
from cloud.webforms import client_address as address
from cloud.webforms import hours, read_form

COOKIE = "shian_console"
STATIC = Path(__file__).parent / "static"
BACKGROUND = ("/console/rows", "/console/stream", "/console/centre.json")
"""Asked by a page's script: an ended session gets 401 (the script goes to the login page),
not a redirect to a page it cannot read."""
SCRIPTS = {
    "console": STATIC / "console.js",
    "figures": STATIC / "figures.js",
    "centre": STATIC / "centre.js",
    "photos": STATIC / "photos.js",
    "live": Path(__file__).parent.parent / "live" / "static" / "live.js",
}
MAX_FORM_BYTES = 16 * 1024
STREAM_S = 300.0
"""A live list's stream ends after this; the browser's EventSource opens a new one."""

Handler = Callable[[Request, Session], Awaitable[Response]]


def inspectors_may(path: str) -> bool:
    """An inspector works patrols: these paths only."""
    return path in ("/console/patrol", "/console/photos", "/console/logout") or path.startswith(
        "/console/patrol/"
    )


def same_origin(request: Request) -> bool:
    """A browser's POST names its page's origin; it must be this host (no cross-site forms)."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    try:
        return urlsplit(origin).netloc == request.headers.get("host", "")
    except ValueError:  # not a URL at all
        return False


async def form_of(request: Request) -> dict[str, str] | None:
    return await read_form(request, MAX_FORM_BYTES)


def routes(store: Store, accounts: Accounts, live: bool = False) -> list[Route]:
    """``live``: the collector runs live views (the wall shows kitchens live)."""
    secure = accounts.s.secure_cookie
    patrols = Patrols(store, checklists.load(accounts.s.checklists_dir))

    def who(request: Request) -> Session | None:
        # what a page's script asks by itself does not count as use (the wall's state does:
        # a wall is watched, not clicked)
        renew = request.url.path not in ("/console/rows", "/console/stream")
        return accounts.session(request.cookies.get(COOKIE, ""), time.time(), renew)

    def page(handler: Handler, raw: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """``raw``: a POST whose body is not a form (a photo): its CSRF token in a header."""

        async def guarded(request: Request) -> Response:
            session, path = who(request), request.url.path
            if session is None:
                if request.method == "GET" and path not in BACKGROUND:
                    return RedirectResponse("/console/login", status_code=303)
                return PlainTextResponse("log in first 请先登录", status_code=401)
            if session.role == "inspector" and not inspectors_may(path):
                if path == "/console" and request.method == "GET":
                    return RedirectResponse("/console/patrol", status_code=303)
                return PlainTextResponse("inspectors work from /patrol 巡查员请使用巡查页面", 403)
            if request.method == "POST":
                f = {"csrf": request.headers.get("x-csrf-token", "")} if raw else None
                if f is None:
                    f = await form_of(request)
                if (
                    f is None
                    or not same_origin(request)
                    or not accounts.csrf_ok(session, f.get("csrf", ""))
                ):
                    accounts.audit(session.name, "csrf_refused", request.url.path[:64], "",
                                   address(request), time.time())  # fmt: skip
                    return PlainTextResponse("refused: stale or forged form", status_code=403)
                request.state.form = f
            return await handler(request, session)

        return guarded

    async def login_page(request: Request) -> Response:
        if who(request) is not None:
            return RedirectResponse("/console", status_code=303)
        return HTMLResponse(pages.login())

    async def login(request: Request) -> Response:
        f = await form_of(request)
        if f is None or not same_origin(request):
            accounts.audit((f or {}).get("name", "")[:64], "login_refused_form", "",
                           request.headers.get("origin", "")[:200], address(request),
                           time.time())  # fmt: skip
            return HTMLResponse(pages.login("refused 拒绝"), status_code=403)
        try:
            token, signed_in = accounts.login(f.get("name", ""), f.get("password", ""),
                                      address(request), time.time())  # fmt: skip
        except LoginRefused as exc:
            return HTMLResponse(pages.login(str(exc)), status_code=401)
        home = "/console/patrol" if signed_in.role == "inspector" else "/console"
        r = RedirectResponse(home, status_code=303)
        r.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure,
                     path="/console")  # fmt: skip
        return r

    async def logout(request: Request, session: Session) -> Response:
        accounts.logout(request.cookies.get(COOKIE, ""))
        accounts.audit(session.name, "logout", "", "", address(request), time.time())
        r = RedirectResponse("/console/login", status_code=303)
        r.delete_cookie(COOKIE, path="/console")
        return r

    async def alert_list(request: Request, session: Session) -> Response:
        f, now = queries.Filters.of(request.query_params), time.time()
        seq = queries.changes(store.db)  # first: a change after it is never missed
        rows = queries.alerts(store.db, session, f)
        return HTMLResponse(pages.alert_list(session, f, rows, now, seq))

    async def rows(request: Request, session: Session) -> Response:
        f = queries.Filters.of(request.query_params)
        return HTMLResponse(pages.rows(queries.alerts(store.db, session, f), time.time()))

    async def stream(request: Request, session: Session) -> Response:
        since = request.query_params.get("since", "")
        known = int(since) if since.isascii() and since.isdigit() and len(since) < 19 else None

        async def changes() -> AsyncIterator[str]:
            last, began, beat = known, time.monotonic(), time.monotonic()
            while time.monotonic() - began < STREAM_S and not await request.is_disconnected():
                now = await anyio.to_thread.run_sync(queries.changes, store.db)
                if now != last:
                    if last is not None:
                        yield f"event: alerts\ndata: {now}\n\n"
                    last = now
                elif time.monotonic() - beat > 15:
                    beat = time.monotonic()
                    yield ": still here\n\n"
                await anyio.sleep(0.5)

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(changes(), media_type="text/event-stream", headers=headers)

    async def detail(request: Request, session: Session) -> Response:
        a = queries.alert(store.db, session, request.path_params["alert_id"])
        if a is None:
            return PlainTextResponse("no such alert 没有这条告警", status_code=404)
        return HTMLResponse(pages.detail(session, a, queries.actions(a["state"])))

    async def act(request: Request, session: Session) -> Response:
        alert_id = request.path_params["alert_id"]
        a = queries.alert(store.db, session, alert_id)
        f: dict[str, str] = request.state.form
        if a is None:
            return PlainTextResponse("no such alert 没有这条告警", status_code=404)
        if session.role != "supervisor":
            return PlainTextResponse("a leader reads; the district's supervisor acts", 403)
        action, note = f.get("action", ""), f.get("note", "")[:1000]
        try:
            due_h = hours(f.get("due_h", ""))
            if action not in pages.ACTIONS:
                raise ValueError(f"unknown action {action[:32]!r}")
            now = time.time()
            store.in_transaction(lambda conn: store.engine.act(  # type: ignore[union-attr]
                conn, now, alert_id, action, session.actor, note,
                due_h * 3600 if due_h else None, district=session.district,
                photos=photos.named(conn, session, f.get("photos", ""))))  # fmt: skip
        except ValueError as exc:
            accounts.audit(session.name, f"{action[:32]}_refused", alert_id, str(exc),
                           address(request), time.time())  # fmt: skip
            a = queries.alert(store.db, session, alert_id) or a
            page_ = pages.detail(session, a, queries.actions(a["state"]), f"!{exc}")
            return HTMLResponse(page_, status_code=409)
        accounts.audit(session.name, action, alert_id, note, address(request), now)
        a = queries.alert(store.db, session, alert_id) or a
        done = f"{pages.ACTIONS[action][0]} {pages.ACTIONS[action][1]}: ok"
        return HTMLResponse(pages.detail(session, a, queries.actions(a["state"]), done))

    async def export_alerts(request: Request, session: Session) -> Response:
        f, fmt = queries.Filters.of(request.query_params), request.path_params["fmt"]
        rows = await run_in_threadpool(queries.alerts, store.db, session, f, None, 100_000)
        accounts.audit(session.name, "export", f"alerts.{fmt}", f.query(), address(request),
                       time.time())  # fmt: skip
        return export("alerts", fmt, queries.COLUMNS.split(", "), rows)

    async def photo(request: Request, session: Session) -> Response:
        r = await photos.upload(request, session, store)
        if r.status_code == 201:
            accounts.audit(session.name, "photo", "", "", address(request), time.time())
        return r

    async def script(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in SCRIPTS:
            return PlainTextResponse("no such script", status_code=404)
        return FileResponse(SCRIPTS[name], media_type="text/javascript")

    async def centre_page(request: Request, session: Session) -> Response:
        return HTMLResponse(pages.centre(session))

    async def centre_state(request: Request, session: Session) -> Response:
        return JSONResponse(centre.state(store.db, session, time.time(), live),
                            headers={"Cache-Control": "no-store"})  # fmt: skip

    def weeks_of(request: Request) -> int:
        weeks = request.query_params.get("weeks", "8")
        ok = weeks.isascii() and weeks.isdigit() and 1 <= int(weeks) <= 53
        return int(weeks) if ok else 8

    def figure_rows(session: Session, request: Request) -> list[dict[str, object]]:
        return figures.weekly(store.db, session, weeks_of(request), time.time())

    async def figures_page(request: Request, session: Session) -> Response:
        rows = await run_in_threadpool(figure_rows, session, request)
        ranks = figures.rankings(rows, store.db, session, time.time())
        weeks = figures.weeks_shown(weeks_of(request), time.time())
        return HTMLResponse(pages.figures(session, weeks, rows, ranks))

    async def site_page(request: Request, session: Session) -> Response:
        now = time.time()
        s = sites.site(store.db, session, request.path_params["site"], now)
        if s is None:
            return PlainTextResponse("no such site 没有这个单位", status_code=404)
        return HTMLResponse(pages.site_page(session, s, now, readings.box(s["sensors"])))

    async def export_figures(request: Request, session: Session) -> Response:
        fmt = request.path_params["fmt"]
        accounts.audit(session.name, "export", f"figures.{fmt}", "", address(request),
                       time.time())  # fmt: skip
        rows = await run_in_threadpool(figure_rows, session, request)
        return export("figures", fmt, figures.CSV_COLUMNS, rows)

    return [
        Route("/console/login", login_page),
        Route("/console/login", login, methods=["POST"]),
        Route("/console/logout", page(logout), methods=["POST"]),
        Route("/console", page(alert_list)),
        Route("/console/rows", page(rows)),
        Route("/console/stream", page(stream)),
        Route("/console/export.{fmt:str}", page(formats(export_alerts))),
        Route("/console/{name}.js", script),
        Route("/console/figures", page(figures_page)),
        Route("/console/centre", page(centre_page)),
        Route("/console/centre.json", page(centre_state)),
        Route("/centre", lambda _: RedirectResponse("/console/centre", status_code=303)),
        Route("/console/sites/{site}", page(site_page)),
        Route("/console/figures.{fmt:str}", page(formats(export_figures))),
        Route("/console/alerts/{alert_id}", page(detail)),
        Route("/console/alerts/{alert_id}", page(act), methods=["POST"]),
        Route("/console/photos", page(photo, raw=True), methods=["POST"]),
        *patrol_routes(patrols, accounts, page),
    ]


def formats(handler: Handler) -> Handler:
    """Only .csv and .xlsx."""

    async def checked(request: Request, session: Session) -> Response:
        if request.path_params["fmt"] not in ("csv", "xlsx"):
            return PlainTextResponse("csv or xlsx", status_code=404)
        return await handler(request, session)

    return checked
