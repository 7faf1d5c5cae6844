"""The live views' HTTP side, on the collector's web server.

    POST /k/{site}/live/{n}         a viewer opens view n: a token and the state, or a notice
    GET  /live/{token}              the state of that viewer's session (while it starts)
    POST /live/{token}/leave        the page is closed (a beacon; silence does the same)
    GET  /live/{token}/frame.jpg    the latest JPEG of a view without H.264
    GET  /live/auth                 nginx's auth_request for each /hls/ fetch (X-Original-URI)
    POST /live/publish              nginx-rtmp's on_publish: may this stream be published?
    POST /live/publish_done         nginx-rtmp's on_publish_done
    GET  /live/page.js              the page's script (tap, start, play, leave)

Every answer is a 2xx or a 4xx with a reason; nothing here names a box or a camera.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cloud.live.sessions import TOKEN, LiveSessions
from cloud.webforms import client_address, read_form
from shared.live import STREAM_RE

MAX_FORM_BYTES = 4096
STATIC = Path(__file__).parent / "static"


def routes(sessions: LiveSessions) -> list[Route]:
    async def watch(request: Request) -> Response:
        site, n = request.path_params["site"], request.path_params["n"]
        if not (n.isascii() and n.isdigit()) or len(n) > 3:
            return PlainTextResponse("no such view 没有这个画面", status_code=404)
        answer = sessions.watch(site, int(n), client_address(request))
        if answer is None:
            return PlainTextResponse("no such view 没有这个画面", status_code=404)
        return JSONResponse(answer.json(), headers={"Cache-Control": "no-store"})

    def token_of(request: Request) -> str | None:
        token = request.path_params["token"]
        return token if TOKEN.fullmatch(token) else None

    async def state(request: Request) -> Response:
        token = token_of(request)
        if token is None:
            return PlainTextResponse("bad token", status_code=404)
        return JSONResponse(sessions.poll(token).json(), headers={"Cache-Control": "no-store"})

    async def leave(request: Request) -> Response:
        token = token_of(request)
        if token is not None:
            sessions.leave(token)
        return Response(status_code=204)

    async def frame(request: Request) -> Response:
        token = token_of(request)
        jpeg = sessions.frame_for(token) if token else None
        if jpeg is None:
            return PlainTextResponse("no frame", status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    async def auth(request: Request) -> Response:
        uri = request.headers.get("x-original-uri", "")
        return Response(status_code=204 if sessions.allowed(uri) else 403)

    async def form(request: Request) -> dict[str, str] | None:
        return await read_form(request, MAX_FORM_BYTES)

    async def publish(request: Request) -> Response:
        f = await form(request)
        name, key = (f or {}).get("name", ""), (f or {}).get("k", "")
        if f is None or not STREAM_RE.fullmatch(name) or not sessions.published(name, key):
            return PlainTextResponse("refused", status_code=403)
        return PlainTextResponse("ok")

    async def publish_done(request: Request) -> Response:
        f = await form(request)
        name = (f or {}).get("name", "")
        if STREAM_RE.fullmatch(name):
            sessions.unpublished(name)
        return PlainTextResponse("ok")

    async def page_js(_: Request) -> Response:
        return FileResponse(STATIC / "live.js", media_type="text/javascript")

    return [
        Route("/k/{site}/live/{n}", watch, methods=["POST"]),
        Route("/live/auth", auth),
        Route("/live/publish", publish, methods=["POST"]),
        Route("/live/publish_done", publish_done, methods=["POST"]),
        Route("/live/page.js", page_js),
        Route("/live/{token}", state),
        Route("/live/{token}/leave", leave, methods=["POST"]),
        Route("/live/{token}/frame.jpg", frame),
    ]
