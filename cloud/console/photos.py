"""Officers' photos: a verification's, a reopening's, a patrol finding's. The phone resizes a
picture before it sends it (``static/photos.js``), one photo per request, as the raw JPEG with
the session's CSRF token in a header (no multipart parser needed). The collector keeps it as
a snapshot of the officer (``officer.{name}``) only if it decodes within the limits; a form
then names its photos by id, and may name only its officer's own."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from cloud.console.accounts import Session
from cloud.db import Conn
from cloud.evidence import Evidence
from cloud.images import jpeg_problem
from cloud.store import Store

MAX_BYTES = 1_500_000
MAX_PIXELS = 2048 * 2048
"""A phone's 12-megapixel photo is refused as it is: the page sends it at 1600 pixels."""
MAX_PER_FORM = 6


async def body_of(request: Request, limit: int) -> bytes | None:
    """The request's body, or None past ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return None
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


async def upload(request: Request, who: Session, store: Store) -> Response:
    data = await body_of(request, MAX_BYTES)
    if data is None:
        return PlainTextResponse(f"a photo is at most {MAX_BYTES} bytes", status_code=413)
    why = jpeg_problem(data, MAX_BYTES, MAX_PIXELS)
    if why is not None:
        return PlainTextResponse(f"not a photo we keep: {why}", status_code=400)
    snap_id = store.evidence.add_photo(who.photo_owner, data, time.time())
    return JSONResponse({"id": snap_id, "url": f"/snap/{snap_id}.jpg"}, status_code=201)


def named(conn: Conn, who: Session, text: str) -> list[str]:
    """The photo ids a form names (comma-separated): at most six, each the officer's own;
    ValueError otherwise."""
    ids = [p for p in (x.strip() for x in text.split(",")) if p][: MAX_PER_FORM + 1]
    if len(ids) > MAX_PER_FORM:
        raise ValueError(f"at most {MAX_PER_FORM} photos")
    if any(len(i) > 64 for i in ids) or Evidence.owned(conn, who.photo_owner, ids) != ids:
        raise ValueError("a photo that is not one of yours")
    return ids
