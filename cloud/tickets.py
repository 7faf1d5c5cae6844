"""Tickets belong to the stall that sold them; the buyer's page says whether one is genuine.

A ticket id is taken by the first stall that sends it: another stall sending the same id is a
dead letter (``ticket_conflict``), never a second owner. A ticket is *genuine* when the
collector holds it, the signature in the link is the HMAC of the ticket as stored under the
key it names (``key``, a key id; a ticket made before key ids uses the stall's first key), and
it names the market, stall and retailer the registry holds for the device that sent it.

Keys (``TicketKeys``) are files under ``[tickets] keys_dir``, one per key: ``<device>.key`` (a
key made before key ids) and ``<device>.<key id>.key``; rotation adds a key and never removes
one, so every ticket already printed keeps verifying.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.batch import DeadLetter
from cloud.db import Conn, Db
from cloud.identity import event_bytes
from cloud.ranges import select_in
from cloud.registry import KEY_ID
from shared import topics
from shared.models import Envelope
from shared.signing import SIG_PATTERN, new_key, read_key, verify, write_key

if TYPE_CHECKING:
    from cloud.registry import RegistryTable

TICKET_ID = re.compile(r"^[a-z2-7]{26}$")


class TicketKeys:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, device: str, key_id: str) -> Path:
        topics.check_name(device, "device")
        if key_id and not KEY_ID.fullmatch(key_id):
            raise ValueError(f"key id {key_id!r}")
        return self.folder / (f"{device}.{key_id}.key" if key_id else f"{device}.key")

    def read(self, device: str, key_id: str) -> bytes:
        """The key; ``OSError`` or ``ValueError`` when there is none."""
        return read_key(self.path(device, key_id))

    def create(self, device: str) -> tuple[str, bytes]:
        """A new key of ``device`` under a new id (written 0600 before it is used)."""
        while True:
            key_id = secrets.token_hex(4)
            path = self.path(device, key_id)
            if not path.exists():
                break
        key = new_key()
        write_key(path, key)
        return key_id, key


class Tickets:
    """The ``tickets`` table."""

    def __init__(self, db: Db) -> None:
        self.db = db

    @staticmethod
    def claim(conn: Conn, events: list[Envelope], dead: list[DeadLetter]) -> set[str]:
        """Event ids of new ticket events whose ticket id another device holds (each becomes
        a dead letter); the first device to send an id owns it."""
        sales = [e for e in events if e.kind == "ticket"]
        if not sales:
            return set()
        owners = dict(
            select_in(
                conn,
                "SELECT ticket_id, device FROM tickets",
                "ticket_id",
                [e.data["ticket_id"] for e in sales],
            )
        )
        refused: set[str] = set()
        for e in sales:
            owner = owners.setdefault(e.data["ticket_id"], e.device)
            if owner != e.device:
                refused.add(e.id)
                reason = f"ticket_conflict: ticket {e.data['ticket_id']} belongs to {owner}"
                dead.append(DeadLetter(topics.events(e.device), event_bytes(e), reason))
        return refused

    @staticmethod
    def insert(conn: Conn, events: list[Envelope], now: float) -> None:
        conn.executemany(
            "INSERT INTO tickets (ticket_id, device, event_id, data, received)"
            " VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
            [
                (
                    e.data["ticket_id"],
                    e.device,
                    e.id,
                    json.dumps(e.data, ensure_ascii=False),
                    now,
                )
                for e in events
                if e.kind == "ticket"
            ],
        )

    def get(self, ticket_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM tickets WHERE ticket_id = ?", (ticket_id,))
        if not rows:
            return None
        row = rows[0]
        row["data"] = json.loads(row["data"])
        return row


@dataclass
class Verdict:
    status: str  # genuine | not_genuine | unknown
    reason: str
    ticket: dict[str, Any] | None = None


def check_ticket(
    tickets: Tickets, registry: RegistryTable, keys: TicketKeys, ticket_id: str, sig: str
) -> Verdict:
    """What the buyer's page says of ``ticket_id`` with the signature from its QR code."""
    if not TICKET_ID.fullmatch(ticket_id):
        return Verdict("unknown", "not a ticket number")
    row = tickets.get(ticket_id)
    if row is None:
        return Verdict("unknown", "no such ticket (forged, or not yet synced from the stall)")
    data = row["data"]
    try:
        key = keys.read(row["device"], str(data.get("key") or ""))
    except (OSError, ValueError):
        return Verdict("unknown", "the stall's key is not known to this collector")
    if not re.fullmatch(SIG_PATTERN, sig.strip().lower()) or not verify(key, data, sig):
        return Verdict("not_genuine", "signature does not match the ticket")
    stall = registry.get(row["device"])
    if stall is None:
        return Verdict("unknown", "the stall that sent it is not registered")
    named = (data.get("market"), data.get("stall"), data.get("retailer"))
    if named != (stall.market, stall.stall_no, stall.retailer):
        return Verdict("not_genuine", "the ticket names another stall than the one that sold it")
    shown = {**data, "market": stall.market, "stall": stall.stall_no, "retailer": stall.retailer}
    return Verdict("genuine", "signature matches the ticket issued by the stall", shown)
