"""A ticket's data as a stall makes it, for the cloud-side tests."""

from __future__ import annotations

from typing import Any

from shared.signing import new_ticket_id, sign


def signed_ticket(signing_key: bytes, /, **fields: Any) -> dict[str, Any]:
    """A whole ticket (these fields over plain defaults), signed with ``signing_key``."""
    t: dict[str, Any] = {
        "ticket_id": new_ticket_id(),
        "market": "m1",
        "stall": "A-1",
        "retailer": "-",
        "plu": "101",
        "product": "白菜",
        "batch": "B1",
        "origin": "咸宁",
        "unit": "kg",
        "quantity": 1000,
        "unit_price_cents": 380,
        "total_cents": 380,
        "time": "2026-11-30T04:00:00Z",
        "key": "",
        **fields,
    }
    t["sig"] = sign(signing_key, t)
    return t
