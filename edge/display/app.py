"""The display server: the hall screen and the stall screen, and what they read.

    GET  /                      the screen of this box (hall or stall)
    GET  /hall                  the canteen hall screen
    GET  /api/hall              cameras, health, ticker, notices, today's records (JSON)
    GET  /hall/cam/{name}.jpg   the latest view with the detector's boxes (the wall's)
    GET  /hall/cam/{name}.mjpg  the same as an MJPEG stream (for a player such as VLC)
    POST /api/morning-check     {"staff", "temperature", "symptoms": [...]}
    POST /api/disinfection      {"area", "method", "by", "minutes"}
    GET  /stall                 the stall screen
    GET  /api/stall/stream      server-sent events: the weight as each scale frame arrives
    GET  /api/qr.svg?data=...   a QR code as SVG (the last ticket's)
    + the stall API of edge/stall/http.py

Everything is served by the agent (Starlette on uvicorn); the pages load nothing from elsewhere.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from edge.display import ledger
from edge.display.records import Records
from edge.stall.http import routes as stall_routes
from edge.store.outbox import OutboxError
from edge.vision.evidence import draw
from shared.codec import CodecError, loads

if TYPE_CHECKING:
    from edge.agent import Agent

STATIC = Path(__file__).resolve().parent / "static"
TICKER_KINDS = (
    "violation",
    "camera_offline",
    "camera_online",
    "camera_tampered",
    "scale_fault",
    "printer_fault",
    "rectification",
    "sensor_excursion",
    "sensor_fault",
)


def page(name: str, agent: Agent) -> HTMLResponse:
    text = (STATIC / name).read_text(encoding="utf-8")
    return HTMLResponse(text.replace("__LANG__", agent.cfg.display.language))


def make_app(agent: Agent) -> Starlette:
    cfg = agent.cfg
    tz = cfg.kitchen.timezone_offset_h if cfg.kitchen else 8
    records = Records(agent.outbox, tz)
    frames_sent: dict[str, int] = {}

    async def index(_: Request) -> Response:
        return RedirectResponse("/stall" if agent.stall is not None else "/hall")

    async def hall(_: Request) -> Response:
        return page("hall.html", agent)

    def hall_state() -> dict[str, Any]:
        k = agent.kitchen
        cameras = []
        if k is not None:
            for cam in k.cameras:
                h = k.health.get(cam.name)
                tampered = h.state.problem if h is not None and h.state.raised else None
                cameras.append({"name": cam.name, "online": cam.online, "tampered": tampered})
        st = agent.outbox.stats()
        ticker = [
            {"kind": e["kind"], "data": e["data"], "at": e["created"]}
            for e in agent.outbox.recent(200)
            if e["kind"] in TICKER_KINDS and time.time() - e["created"] < 86400
        ][:12]
        return {
            "device": cfg.device,
            "site": cfg.site,
            "now": time.time(),
            "cameras": cameras,
            "health": {
                "connected": agent.sync.connected,
                "outbox_depth": st.depth,
                "oldest_age_s": st.oldest_age_s,
                "dropped": st.dropped,
                "sessions": agent.sync.counters["sync_sessions"],
            },
            "ticker": ticker,
            "notices": [n for n in agent.notices.list() if n.get("state") != "closed"],
            "morning_checks": records.today("morning_check"),
            "disinfections": records.today("disinfection"),
            "sensors": agent.sensors.view(records.day_start()) if agent.sensors else [],
            "stock": ledger.lots(agent),
            "scanned": agent.scanner.last if agent.scanner else {},
        }

    async def hall_api(_: Request) -> Response:
        return JSONResponse(await run_in_threadpool(hall_state))

    def camera(name: str) -> Any:
        k = agent.kitchen
        return next((c for c in k.cameras if c.name == name), None) if k else None

    encoded: dict[str, tuple[int, bytes]] = {}  # the latest JPEG of each camera, by frame

    def encode(name: str, frame: Any) -> bytes:
        """The frame with the detector's boxes, scaled for the wall (once per frame)."""
        cached = encoded.get(name)
        if cached is not None and cached[0] == frame.n:
            return cached[1]
        k = agent.kitchen
        assert k is not None
        dets = k.detections.get(name, (0.0, []))
        recent = dets[1] if frame.at - dets[0] < 2.0 else []
        img = draw(frame.image, recent, f"{name} {time.strftime('%H:%M:%S')}")
        width = cfg.display.stream_width
        h = round(img.shape[0] * width / img.shape[1])
        ok, jpg = cv2.imencode(".jpg", cv2.resize(img, (width, h)), [cv2.IMWRITE_JPEG_QUALITY, 70])
        data = bytes(jpg.tobytes()) if ok else b""
        encoded[name] = (frame.n, data)
        return data

    async def camera_jpeg(request: Request) -> Response:
        """The latest view, one JPEG: the wall asks for the next when one has loaded (nine
        MJPEG streams would exceed a browser's six connections to one host)."""
        name = request.path_params["name"]
        cam = camera(name)
        if cam is None:
            return JSONResponse({"error": f"no camera {name}"}, status_code=404)
        f = cam.latest
        if f is None:
            return Response(status_code=503)
        frames_sent[name] = frames_sent.get(name, 0) + 1
        return Response(
            await run_in_threadpool(encode, name, f),
            media_type="image/jpeg",
            headers={"Cache-Control": "no-store"},
        )

    async def camera_stream(request: Request) -> Response:
        name = request.path_params["name"]
        cam = camera(name)
        if cam is None:
            return JSONResponse({"error": f"no camera {name}"}, status_code=404)

        async def frames() -> Any:
            last = -1
            while not await request.is_disconnected():
                f = cam.latest
                if f is not None and f.n != last:
                    last = f.n
                    jpg = await run_in_threadpool(encode, name, f)
                    frames_sent[name] = frames_sent.get(name, 0) + 1
                    yield (
                        b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                        + str(len(jpg)).encode()
                        + b"\r\n\r\n"
                        + jpg
                        + b"\r\n"
                    )
                await asyncio.sleep(1.0 / cam.fps)

        return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame")

    async def record(request: Request, kind: str) -> Response:
        try:
            body = loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            if kind == "morning_check":
                temp = float(body.get("temperature", 0))
                symptoms = list(body.get("symptoms") or [])
                body = {
                    "staff": str(body.get("staff", "")).strip(),
                    "temperature": temp,
                    "symptoms": symptoms,
                    "fit": not symptoms and temp < 37.3,
                }
            event_id = await run_in_threadpool(records.add, kind, body)
        except (ValueError, TypeError, OutboxError, ValidationError, CodecError) as exc:
            first = (str(exc).splitlines() or [repr(exc)])[0]
            return JSONResponse({"error": first}, status_code=400)
        return JSONResponse({"ok": True, "event": event_id, "record": body})

    async def morning(request: Request) -> Response:
        return await record(request, "morning_check")

    async def disinfection(request: Request) -> Response:
        return await record(request, "disinfection")

    async def stall_page(_: Request) -> Response:
        if agent.stall is None:
            return RedirectResponse("/hall")
        return page("stall.html", agent)

    async def stall_stream(request: Request) -> Response:
        stall = agent.stall
        if stall is None:
            return JSONResponse({"error": "not a stall"}, status_code=404)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_weight(w: Any, _r: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, w.as_json())

        if stall.scale is not None:
            stall.scale.listeners.append(on_weight)

        async def events() -> Any:
            try:
                yield f"event: state\ndata: {json.dumps(stall.state(), ensure_ascii=False)}\n\n"
                while not await request.is_disconnected():
                    try:
                        w = await asyncio.wait_for(queue.get(), 1.0)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    while not queue.empty():  # a slow screen gets the newest weight
                        w = queue.get_nowait()
                    w["sent"] = time.time()
                    yield f"event: weight\ndata: {json.dumps(w)}\n\n"
            finally:
                if stall.scale is not None:
                    stall.scale.listeners.remove(on_weight)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def qr_svg(request: Request) -> Response:
        import qrcode
        import qrcode.image.svg

        data = request.query_params.get("data", "")[:500]
        img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
        buf = io.BytesIO()
        img.save(buf)
        return Response(buf.getvalue(), media_type="image/svg+xml")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/hall", hall),
            Route("/api/hall", hall_api),
            Route("/hall/cam/{name}.mjpg", camera_stream),
            Route("/hall/cam/{name}.jpg", camera_jpeg),
            Route("/api/morning-check", morning, methods=["POST"]),
            Route("/api/disinfection", disinfection, methods=["POST"]),
            *ledger.routes(agent),
            Route("/stall", stall_page),
            Route("/api/stall/stream", stall_stream),
            Route("/api/qr.svg", qr_svg),
            *(stall_routes(agent.stall) if agent.stall is not None else []),
        ]
    )
    app.state.frames_sent = frames_sent
    return app
