"""The collector's public pages: what a buyer's phone opens from a ticket's QR code.

    GET /t/{ticket_id}?s={sig}        the ticket page (mobile first, Chinese with English)
    GET /t/{ticket_id}.json?s={sig}   the same as JSON
    GET /snap/{id}.jpg                a violation's evidence snapshot
    GET /k/{site}[.json]              a site's public page (cloud.site_page)
    .../live/...                      its live views, when [live] is set (cloud.live.web)
    /console/...                      the supervisors' console (cloud.console.app)
    GET /assets/{file}                the browser libraries (cloud.webassets)
    GET /healthz                      "ok"

A ticket is *genuine* when the collector holds it and the signature in the link is the HMAC,
under the stall device's key, of the ticket as stored. A forged id is *unknown*; an altered
signature or an altered ticket is *not genuine*. The pages load nothing from elsewhere.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
)
from starlette.routing import Route

from cloud import site_page
from cloud.console.accounts import Accounts
from cloud.console.app import routes as console_routes
from cloud.fleet.keys import FileStore
from cloud.live.service import LiveService
from cloud.live.web import routes as live_routes
from cloud.store import Store
from cloud.tickets import TicketKeys, Verdict, check_ticket
from cloud.webassets import ASSETS, MEDIA_TYPES

CHINA = timezone(timedelta(hours=8))


def _when(value: Any) -> str:
    """A ticket's time in China's time zone, or what it says when it is not a time."""
    try:
        return datetime.fromisoformat(str(value)).astimezone(CHINA).strftime("%Y-%m-%d %H:%M")
    except (ValueError, TypeError, OverflowError):
        return str(value)


def _money(cents: int) -> str:
    return f"¥{cents // 100}.{cents % 100:02d}"


BANNERS = {
    "genuine": ("ok", "✓ 真实票据", "Genuine ticket"),
    "not_genuine": ("bad", "✗ 票据不真实", "Not genuine: this ticket was altered or forged"),
    "unknown": ("unknown", "? 无法查验", "Unknown ticket"),
}

CSS = """
body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC',sans-serif;margin:0;background:#f4f4f0;
color:#222;font-size:17px}main{max-width:34rem;margin:0 auto;padding:1rem}
.banner{border-radius:.6rem;padding:1rem;margin-bottom:1rem;color:#fff}
.banner b{display:block;font-size:1.6rem}.ok{background:#1b7f3a}.bad{background:#b3261e}
.unknown{background:#666}table{width:100%;border-collapse:collapse;background:#fff;
border-radius:.6rem}th,td{text-align:left;padding:.55rem .7rem;border-bottom:1px solid #eee;
vertical-align:top}th{width:38%;color:#555;font-weight:normal}th small,td small{display:block;
color:#888;font-size:.8rem}footer{color:#777;font-size:.8rem;margin-top:1rem}
"""


def _row(zh: str, en: str, value: str) -> str:
    return f"<tr><th>{zh}<small>{en}</small></th><td>{value}</td></tr>"


def render_page(v: Verdict) -> str:
    cls, zh, en = BANNERS[v.status]
    e = html.escape
    rows = ""
    t = v.ticket
    if t is not None:
        qty = f"{t['quantity'] / 1000:.3f} kg" if t["unit"] == "kg" else f"{t['quantity']} 件 pcs"
        per = "kg" if t["unit"] == "kg" else "件"
        when = e(_when(t.get("time")))
        insp = t.get("inspection") or {}
        product = e(t["product"]) + (
            f"<small>{e(t['product_en'])}</small>" if t.get("product_en") else ""
        )
        rows = "".join(
            [
                _row("品名", "Product", product),
                _row("产地", "Origin", e(t["origin"])),
                _row("批次", "Batch", e(t["batch"])),
                _row(
                    "检测结果",
                    "Test result",
                    e(f"{insp.get('item', '')} {insp.get('result', '')}".strip() or "—")
                    + (
                        f"<small>{e(insp.get('date', ''))} {e(insp.get('lab', ''))}</small>"
                        if insp
                        else ""
                    ),
                ),
                _row("市场 / 摊位", "Market / stall", f"{e(t['market'])} · {e(t['stall'])}"),
                _row("经营者", "Vendor", e(t["retailer"])),
                _row("重量", "Weight" if t["unit"] == "kg" else "Quantity", qty),
                _row("单价", "Unit price", f"{_money(t['unit_price_cents'])}/{per}"),
                _row("金额", "Total", f"<b>{_money(t['total_cents'])}</b>"),
                _row("时间", "Time (UTC+8)", when),
                _row("票号", "Ticket no.", f"<small>{e(t['ticket_id'])}</small>"),
            ]
        )
    table = f"<table>{rows}</table>" if rows else ""
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>食安溯源 Shian trace — {e(en)}</title><style>{CSS}</style></head><body><main>"
        f"<div class='banner {cls}' id='verdict' data-status='{v.status}'><b>{zh}</b>{e(en)}"
        f"<small style='display:block;opacity:.85'>{e(v.reason)}</small></div>{table}"
        "<footer>食安 Shian · 扫码溯源 traceability by the market regulator</footer>"
        "</main></body></html>"
    )


def make_app(
    store: Store,
    keys_dir: Path,
    health: Callable[[], str | None] = lambda: None,
    files: FileStore | None = None,
    live: LiveService | None = None,
    console: Accounts | None = None,
    assets: Path | None = None,
) -> Starlette:
    """The public pages. Every request gets a 2xx or a 4xx with a reason (a fuzz test sends
    them all kinds), except ``/healthz`` while the collector is failing: 503 and why, which
    is what a load balancer or a probe needs to see. ``files``: the update files boxes fetch
    (``/fleet/files/{sha256}``, checked by the box against its signed update). ``live``: the
    live views of public cameras (``cloud.live.web``), shown on the site pages."""
    keys = TicketKeys(keys_dir)

    def verdict(request: Request) -> Verdict:
        tid = request.path_params["ticket_id"]
        sig = request.query_params.get("s", "")
        return check_ticket(store.tickets, store.registry, keys, tid, sig)

    async def page(request: Request) -> Response:
        v = verdict(request)
        return HTMLResponse(render_page(v), status_code=200 if v.ticket else 404)

    async def page_json(request: Request) -> Response:
        v = verdict(request)
        return JSONResponse(
            {"status": v.status, "reason": v.reason, "ticket": v.ticket},
            status_code=200 if v.ticket else 404,
        )

    async def healthz(_: Request) -> Response:
        failure = health()
        if failure is not None:
            return PlainTextResponse(f"failing: {failure}", status_code=503)
        return PlainTextResponse("ok")

    async def snapshot(request: Request) -> Response:
        row = store.evidence.get(request.path_params["snap_id"])
        if row is None or not Path(row["path"]).is_file():
            return PlainTextResponse("no such snapshot", status_code=404)
        return FileResponse(row["path"], media_type="image/jpeg")

    async def site(request: Request) -> Response:
        name = request.path_params["site"]
        as_json = name.endswith(".json")
        now = time.time()
        r = site_page.record(store.db, name.removesuffix(".json"), now)
        if r is None:
            return PlainTextResponse("no such site 没有这个单位", status_code=404)
        if live is not None:
            r["live"] = site_page.live_views(live.sessions, r["site"], now)
        if as_json:
            return JSONResponse(r)
        return HTMLResponse(site_page.render(r))

    async def asset(request: Request) -> Response:
        name = request.path_params["file"]
        if assets is None or name not in ASSETS or not (assets / name).is_file():
            return PlainTextResponse("no such file (shian-cloud assets installs them)", 404)
        media = MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")
        return FileResponse(assets / name, media_type=media)

    async def fleet_file(request: Request) -> Response:
        path = files.path(request.path_params["sha256"]) if files is not None else None
        if path is None:
            return PlainTextResponse("no such file", status_code=404)
        return FileResponse(path, media_type="application/octet-stream")

    extra = live_routes(live.sessions) if live is not None else []
    if console is not None:
        extra += console_routes(store, console, live=live is not None)
    return Starlette(
        routes=[
            *extra,
            Route("/fleet/files/{sha256}", fleet_file),
            Route("/assets/{file}", asset),
            Route("/k/{site}", site),
            Route("/t/{ticket_id}.json", page_json),
            Route("/t/{ticket_id}", page),
            Route("/healthz", healthz),
            Route("/snap/{snap_id}.jpg", snapshot),
        ]
    )
