"""What stands in front of the box's screens and their API (ASGI middleware).

Anyone on the kitchen's LAN, and any web page a browser on that LAN opens, can reach the box's
port. So, before a request reaches the screens:

- **Host**: a name other than ``localhost`` or one the config lists is refused (400): a page
  that rebinds its own domain to the box's address (DNS rebinding) arrives with its own name.
  An IP address is always fine: nobody can rebind one.
- **Origin**: a browser request from another origin is refused (403), so no page elsewhere can
  make the box sell, record or read anything.
- **Bodies**: JSON only (415 otherwise; a cross-site form cannot send JSON without asking
  first) and at most ``MAX_BODY`` bytes (413), counted as they arrive, whatever the headers say.
- **Token**: when the screens listen beyond loopback, every request needs the token, as
  ``Authorization: Bearer``, the ``shian_screen`` cookie, or once in the kiosk's URL
  (``?token=``), which sets the cookie and redirects to the same page without it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 64 * 1024
COOKIE = "shian_screen"
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def _host_name(host: str) -> str:
    """``box:8088`` -> ``box``; ``[::1]:8088`` -> ``::1``."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class ScreenGuard:
    def __init__(self, app: App, token: str = "", allowed_hosts: Iterable[str] = ()) -> None:
        self.app, self.token = app, token
        self.hosts = {"localhost", *(h.lower() for h in allowed_hosts)}

    @property
    def state(self) -> Any:
        """The guarded app's state (Starlette's)."""
        return getattr(self.app, "state", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        if self.token and not self._has_token(headers):
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if hmac.compare_digest(query.get("token", "").encode(), self.token.encode()):
                await self._set_cookie(scope, query, send)
            else:
                await _answer(send, 401, "this screen needs its token (see docs/displays.md)")
            return
        if scope["method"] in _WRITES:
            await self._guarded_body(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        host = headers.get("host", "")
        name = _host_name(host).lower()
        if not name or not (_is_ip(name) or name in self.hosts):
            return 400, f"unknown Host {host[:100]!r}"
        origin = headers.get("origin")
        if origin is not None and origin.lower() != f"http://{host}".lower():
            return 403, "cross-origin requests are refused"
        if scope["method"] in _WRITES:
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            length = headers.get("content-length", "0")
            if ctype != "application/json" and length not in ("", "0"):
                return 415, "send JSON (Content-Type: application/json)"
            if not length.isdigit() and length:
                return 400, "bad Content-Length"
            if length.isdigit() and int(length) > MAX_BODY:
                return 413, f"body larger than {MAX_BODY} bytes"
        return None

    def _has_token(self, headers: dict[str, str]) -> bool:
        given = ""
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        elif "cookie" in headers:
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(headers["cookie"])
            except Exception:  # a malformed cookie header is no token
                return False
            if COOKIE in cookie:
                given = cookie[COOKIE].value
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def _set_cookie(self, scope: Scope, query: dict[str, str], send: Send) -> None:
        rest = urlencode({k: v for k, v in query.items() if k != "token"})
        location = scope["path"] + (f"?{rest}" if rest else "")
        cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    async def _guarded_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the whole body first (it is small), refusing it past ``MAX_BODY``; the app
        then reads it from here."""
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await _answer(send, 413, f"body larger than {MAX_BODY} bytes")
                return
            more = bool(message.get("more_body", False))
        given = False

        async def replay() -> Message:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
