"""What the collector's pages read from a request: a small form, and who sent it."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request


def client_address(request: Request) -> str:
    """The client's address: as nginx in front gives it (it sets the header, never appends to
    one a client sent), else the connection's."""
    forwarded = request.headers.get("x-forwarded-for", "").split(",")[-1].strip()
    return forwarded[:64] or (request.client.host if request.client else "")


async def read_form(request: Request, max_bytes: int) -> dict[str, str] | None:
    """A url-encoded form of at most ``max_bytes`` (the first value of each field), or None
    when it is larger or not a form."""
    if int(request.headers.get("content-length") or 0) > max_bytes:
        return None
    body = await request.body()
    if len(body) > max_bytes:
        return None
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in fields.items()}


def hours(text: str) -> float | None:
    """A deadline in hours from a form (1 to 720), None when blank; ValueError otherwise."""
    if not text:
        return None
    try:
        h = float(text[:16])
    except ValueError:
        raise ValueError("the deadline is a number of hours") from None
    if not 1 <= h <= 720:  # also refuses nan and inf
        raise ValueError("the deadline must be 1 to 720 hours")
    return h
