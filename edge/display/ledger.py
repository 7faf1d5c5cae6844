"""The hall screen's ledger and storage: a scanner field (a USB barcode scanner types the
ticket's link into it, then Enter), a delivery typed in, and stock taken out, first-expired
first-out. Each answer is the record made, or 400 with the reason.

    POST /api/ledger/scan   {"code", "by", "expires"?, "category"?}
    POST /api/ledger        a purchase's fields
    POST /api/stock/out     {"lot", "quantity", "reason", "by"}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.ledger.scan import entry_from, fetch_ticket, parse_code
from edge.store.outbox import OutboxError
from shared.codec import CodecError, first_error, loads

if TYPE_CHECKING:
    from edge.agent import Agent

MAX_BODY = 8 * 1024


def lots(agent: Agent) -> list[dict[str, Any]]:
    """The stock, first-expired first-out, with the days each lot has left."""
    if agent.stock is None:
        return []
    today = datetime.now(agent.stock.tz).date()
    out = []
    for lot in agent.stock.lots()[:50]:
        try:
            days: int | None = (date.fromisoformat(lot["expires"] or "") - today).days
        except ValueError:  # no date
            days = None
        out.append({**lot, "days_left": days})
    return out


def routes(agent: Agent) -> list[Route]:
    def handler(work: Callable[[dict[str, Any]], Any]) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            if agent.stock is None:
                return JSONResponse({"error": "this box keeps no stock"}, status_code=404)
            try:
                raw = await request.body()
                if len(raw) > MAX_BODY:
                    raise ValueError("the body is too long")
                body = loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                made = await run_in_threadpool(work, body)
            except ValidationError as exc:
                return JSONResponse({"error": first_error(exc)}, status_code=400)
            except (ValueError, TypeError, OutboxError, CodecError) as exc:  # ScanError too
                first = (str(exc).splitlines() or [repr(exc)])[0]
                return JSONResponse({"error": first}, status_code=400)
            return JSONResponse({"ok": True, **made})

        return answer

    def scan(body: dict[str, Any]) -> dict[str, Any]:
        assert agent.stock is not None
        ticket_id, sig = parse_code(str(body.get("code", "")))
        ticket = fetch_ticket(agent.cfg.ledger.trace_url, ticket_id, sig)
        entry = {**entry_from(ticket, str(body.get("by", "")).strip(), body.get("expires") or None),
                 "category": body.get("category") or "other"}  # fmt: skip
        return {"event": agent.stock.record(entry), "record": entry}

    def typed(body: dict[str, Any]) -> dict[str, Any]:
        assert agent.stock is not None
        entry = {k: v for k, v in body.items() if v not in ("", None)}
        return {"event": agent.stock.record(entry), "record": entry}

    def take(body: dict[str, Any]) -> dict[str, Any]:
        assert agent.stock is not None
        event = agent.stock.take(str(body.get("lot", "")), float(body.get("quantity", 0)),
                                 str(body.get("reason") or "used"),
                                 str(body.get("by", "")).strip())  # fmt: skip
        return {"event": event}

    return [
        Route("/api/ledger/scan", handler(scan), methods=["POST"]),
        Route("/api/ledger", handler(typed), methods=["POST"]),
        Route("/api/stock/out", handler(take), methods=["POST"]),
    ]
