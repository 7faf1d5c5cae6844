"""Ticket ids and signatures: the QR on a ticket carries the id and a short HMAC.

The signature is HMAC-SHA256 under the stall device's key over the canonical JSON of the whole
ticket (every field but the signature), cut to 80 bits and written in base32 (16 characters):
short enough for a small QR code, far beyond guessing. The collector holds the same key and
recomputes it from the ticket it stored, so a forged id, an altered signature or an altered
ticket all show as not genuine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shared.ids import uuid7
from shared.secretfiles import write_secret

SIG_BYTES = 10
SIG_PATTERN = r"^[a-z2-7]{16}$"
"""A signature as printed: 16 lowercase base32 characters."""


def new_ticket_id() -> str:
    """26 lowercase base32 characters of a UUIDv7 (time-ordered, unique)."""
    return base64.b32encode(uuid7().bytes).decode().rstrip("=").lower()


def canonical(ticket: dict[str, Any]) -> bytes:
    body = {k: v for k, v in ticket.items() if k != "sig"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def sign(key: bytes, ticket: dict[str, Any]) -> str:
    mac = hmac.new(key, canonical(ticket), hashlib.sha256).digest()[:SIG_BYTES]
    return base64.b32encode(mac).decode().rstrip("=").lower()


def verify(key: bytes, ticket: dict[str, Any], sig: str) -> bool:
    """Whether ``sig`` is the ticket's signature (any text: a link's ``s`` is untrusted)."""
    given = sig.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(sign(key, ticket).encode(), given)


def ticket_url(base_url: str, ticket_id: str, sig: str) -> str:
    return f"{base_url.rstrip('/')}/t/{quote(ticket_id)}?s={quote(sig)}"


def new_key() -> bytes:
    return secrets.token_bytes(32)


def read_key(path: Path) -> bytes:
    """A key file holds 64 hex digits (32 bytes)."""
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: a ticket key file must hold 64 hex digits") from None
    if len(key) < 16:
        raise ValueError(f"{path}: ticket key too short ({len(key)} bytes, need 16 or more)")
    return key


def write_key(path: Path, key: bytes) -> None:
    write_secret(path, key.hex() + "\n")
