"""Tickets: made from a product and a stable weight, signed, and committed (ticket row and
``ticket`` event in one transaction) before the printer is touched. A ticket stays pending
until a printer has taken all of it; the print worker retries until then.

A ticket printed again is marked as a copy (补打): the vendor's reprint, and a ticket whose
first print has an unknown outcome (the printer took bytes of it, then its reply or the
connection was lost, or the box stopped mid-job: the attempt is recorded before the job goes
out), since that first one may be in the buyer's hand."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from edge.config import StallSettings
from edge.stall.scale import Weight
from edge.store.outbox import Outbox
from shared.catalog import Product
from shared.kinds import Ticket
from shared.signing import new_ticket_id, sign, ticket_url


class SaleRefused(ValueError):
    """The sale cannot be made now; the message says why (for the vendor's screen)."""


def total_cents(unit: str, quantity: int, unit_price_cents: int) -> int:
    amount = Decimal(quantity) * unit_price_cents
    if unit == "kg":
        amount /= 1000
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


class TicketBook:
    def __init__(self, outbox: Outbox, stall: StallSettings, key: bytes) -> None:
        self.outbox, self.stall, self.key = outbox, stall, key

    def url(self, ticket: dict[str, Any]) -> str:
        return ticket_url(self.stall.ticket_base_url, ticket["ticket_id"], ticket["sig"])

    def build(
        self,
        product: Product,
        weight: Weight | None = None,
        pieces: int | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """The signed ticket for a sale, or :class:`SaleRefused`."""
        if product.unit == "kg":
            if weight is None or not weight.sellable or weight.grams is None:
                state = weight.state if weight else "no scale"
                raise SaleRefused(f"no stable weight to sell ({state})")
            quantity = int(Decimal(str(weight.grams)).quantize(Decimal(1), ROUND_HALF_UP))
            if quantity < 1:
                raise SaleRefused("weight below 1 g")
        else:
            if not pieces or pieces < 1:
                raise SaleRefused("how many pieces?")
            quantity = pieces
        when = (now or datetime.now(UTC)).astimezone(UTC)
        inspection = None
        if product.inspection_item or product.inspection_result:
            inspection = {
                "item": product.inspection_item,
                "result": product.inspection_result,
                "date": product.inspection_date.isoformat() if product.inspection_date else "",
                "lab": product.inspection_lab,
            }
        ticket: dict[str, Any] = {
            "ticket_id": new_ticket_id(),
            "market": self.stall.market,
            "stall": self.stall.stall_no,
            "retailer": self.stall.retailer,
            "plu": product.plu,
            "product": product.name,
            "product_en": product.name_en,
            "goods_code": product.goods_code,
            "batch": product.batch,
            "origin": product.origin,
            "supplier": product.supplier,
            "inspection": inspection,
            "unit": product.unit,
            "quantity": quantity,
            "unit_price_cents": product.unit_price_cents,
            "total_cents": total_cents(product.unit, quantity, product.unit_price_cents),
            "time": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "key": self.stall.ticket_key_id,
        }
        ticket["sig"] = sign(self.key, ticket)
        return Ticket.model_validate(ticket).model_dump(mode="json")

    def commit(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """Ticket row and ``ticket`` event, durably, in one transaction."""

        def insert(conn: Any, queued: list[Any]) -> None:
            conn.execute(
                "INSERT INTO tickets (ticket_id, seq, data, created) VALUES (?,?,?,?)",
                (
                    ticket["ticket_id"],
                    queued[0].seq,
                    json.dumps(ticket, ensure_ascii=False),
                    self.outbox.clock(),
                ),
            )

        self.outbox.enqueue_many([("ticket", ticket, None)], also=insert)
        return ticket

    def issue(
        self, product: Product, weight: Weight | None = None, pieces: int | None = None
    ) -> dict[str, Any]:
        return self.commit(self.build(product, weight, pieces))

    # -- printing state ------------------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        rows = self.outbox.read("SELECT data FROM tickets WHERE printed IS NULL ORDER BY created")
        return [json.loads(r[0]) for r in rows]

    def mark_printed(self, ticket_id: str) -> None:
        with self.outbox.transaction() as conn:
            conn.execute(
                "UPDATE tickets SET printed = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE ticket_id = ?",
                (self.outbox.clock(), ticket_id),
            )

    def pending_jobs(self) -> list[tuple[dict[str, Any], bool]]:
        """Tickets to print, oldest first, each with whether it must be marked a copy."""
        rows = self.outbox.read(
            "SELECT data, copy FROM tickets WHERE printed IS NULL ORDER BY created"
        )
        return [(json.loads(data), bool(copy)) for data, copy in rows]

    def mark_attempt(self, ticket_id: str) -> None:
        """Before the job goes out: from now on the ticket may be on paper, so if the box
        stops before the outcome is known, it is printed again as a copy."""
        with self.outbox.transaction() as conn:
            conn.execute("UPDATE tickets SET copy = 1 WHERE ticket_id = ?", (ticket_id,))

    def mark_failed(self, ticket_id: str, reason: str, copy: bool) -> None:
        """``copy``: whether its next print is a copy (it was one already, or the printer may
        have printed this attempt)."""
        with self.outbox.transaction() as conn:
            conn.execute(
                "UPDATE tickets SET attempts = attempts + 1, last_error = ?, copy = ?"
                " WHERE ticket_id = ?",
                (reason, int(copy), ticket_id),
            )

    def reprint(self, ticket_id: str) -> bool:
        """Queue a printed ticket again, as a copy (the vendor's 'reprint' button)."""
        with self.outbox.transaction() as conn:
            cur = conn.execute(
                "UPDATE tickets SET printed = NULL, copy = 1 WHERE ticket_id = ?", (ticket_id,)
            )
            return cur.rowcount == 1

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.outbox.read(
            "SELECT data, created, printed, attempts, last_error FROM tickets "
            "ORDER BY created DESC LIMIT ?",
            (limit,),
        )
        out = []
        for data, created, printed, attempts, err in rows:
            t = json.loads(data)
            out.append(
                {
                    **t,
                    "created": created,
                    "printed": printed,
                    "attempts": attempts,
                    "last_error": err,
                    "url": self.url(t),
                }
            )
        return out
