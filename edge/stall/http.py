"""The stall's local HTTP API, for the stall screen (and anything on the box's network).

GET  /api/stall          weight, chosen product, catalog, last ticket, printer state
POST /api/stall/select   {"plu": "101"}
POST /api/stall/print    {"plu": "101"} or {"plu": "201", "pieces": 3}; 409 with the reason
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from edge.stall.service import Stall
from edge.stall.tickets import SaleRefused
from edge.store.outbox import OutboxError
from shared.codec import CodecError, loads


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = loads(raw)
    except CodecError as exc:
        raise SaleRefused(f"request body is not JSON within limits: {exc}") from None
    if not isinstance(data, dict):
        raise SaleRefused("request body must be a JSON object")
    return data


def routes(stall: Stall) -> list[Route]:
    async def state(_: Request) -> JSONResponse:
        return JSONResponse(stall.state())

    async def select(request: Request) -> JSONResponse:
        try:
            stall.select(str((await _body(request)).get("plu", "")))
        except SaleRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse(stall.state())

    async def sell(request: Request) -> JSONResponse:
        try:
            body = await _body(request)
            pieces = body.get("pieces")
            result = stall.sell(body.get("plu"), int(pieces) if pieces is not None else None)
        except (SaleRefused, ValueError, OutboxError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse(result)

    return [
        Route("/api/stall", state),
        Route("/api/stall/select", select, methods=["POST"]),
        Route("/api/stall/print", sell, methods=["POST"]),
    ]


def make_app(stall: Stall) -> Starlette:
    """The stall API alone (the display server includes these routes too)."""
    return Starlette(routes=routes(stall))
