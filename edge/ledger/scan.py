"""A scanned code, which nobody here controls: a USB or serial barcode scanner types what the
QR code holds, like a keyboard. A stall's ticket code is its page's link,
``https://{host}/t/{ticket id}?s={signature}``; only the ticket id and the signature are taken
from it. The ticket is then asked of this box's own collector (``[ledger] trace_url``), never of
the host the code names, so a printed code cannot make the box fetch anything else.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pydantic import ValidationError

from shared.kinds import Ticket

TICKET = re.compile(r"^[a-z2-7]{26}$")
SIG = re.compile(r"^[a-z2-7]{16}$")
MAX_CODE = 512
MAX_ANSWER = 64 * 1024


class ScanError(ValueError):
    """A code that is not a ticket, or a ticket this box cannot take: the reason."""


def parse_code(code: str) -> tuple[str, str]:
    """(ticket id, signature) of a scanned ticket code, or ScanError."""
    code = code.strip()
    if not code or len(code) > MAX_CODE or not code.isprintable():
        raise ScanError("not a ticket's code (empty, too long, or not text)")
    try:
        parts = urlsplit(code)
    except ValueError:
        raise ScanError("not a ticket's code (not a link)") from None
    path = parts.path.rstrip("/").rsplit("/", 2)
    sig = parse_qs(parts.query).get("s", [""])[0].lower()
    if len(path) < 2 or path[-2] != "t" or not TICKET.fullmatch(path[-1]):
        raise ScanError("not a market ticket's code (no /t/{ticket} in it)")
    if not SIG.fullmatch(sig):
        raise ScanError("the ticket's code has no signature (s=...)")
    return path[-1], sig


def fetch_ticket(trace_url: str, ticket_id: str, sig: str, timeout_s: float = 5.0) -> Ticket:
    """The ticket as the collector holds it, when it says the ticket is genuine."""
    if not trace_url:
        raise ScanError("set [ledger] trace_url (the collector's public address) to scan tickets")
    url = f"{trace_url.rstrip('/')}/t/{ticket_id}.json?s={sig}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            body = r.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_ANSWER + 1)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # a broken answer too
        raise ScanError(f"the collector could not be asked: {exc!r}"[:300]) from None
    if len(body) > MAX_ANSWER:
        raise ScanError("the collector's answer is too long")
    try:
        answer: dict[str, Any] = json.loads(body)
        status, reason = answer["status"], answer.get("reason", "")
    except (ValueError, KeyError, TypeError):
        raise ScanError("the collector's answer is not a ticket verdict") from None
    if status != "genuine":
        raise ScanError(f"the ticket is {status}: {reason}")
    try:
        return Ticket.model_validate(answer["ticket"])
    except (ValidationError, KeyError) as exc:
        raise ScanError(f"the ticket does not check: {str(exc)[:200]}") from None


def entry_from(ticket: Ticket, by: str, expires: str | None = None) -> dict[str, Any]:
    """A ``purchase`` event's data filled from the stall's ticket."""
    quantity = ticket.quantity / 1000 if ticket.unit == "kg" else float(ticket.quantity)
    return {
        "supplier": f"{ticket.market} {ticket.stall} {ticket.retailer}".strip()[:64],
        "product": ticket.product,
        "batch": ticket.batch,
        "quantity": quantity,
        "unit": ticket.unit,
        "expires": expires,
        "ticket": ticket.ticket_id,
        "ticket_sig": ticket.sig,
        "by": by,
    }
