"""The stall: wires the scale, the catalog, the ticket book and the printer of one box.

The vendor's actions (choose a product, print) come from the stall screen's HTTP API or the
terminal (``shian-edge stall``); both call :meth:`Stall.select` and :meth:`Stall.sell`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from edge.config import StallSettings
from edge.stall.catalog import Catalog
from edge.stall.printer import PrinterLink, PrintWorker, load_printer_profile
from edge.stall.profiles import Stability, load_scale_profile
from edge.stall.scale import ScaleReader, Weight
from edge.stall.tickets import SaleRefused, TicketBook
from edge.store.outbox import Outbox
from shared.signing import read_key

log = logging.getLogger("shian.stall")

Emit = Callable[[str, dict[str, Any]], object]


def ticket_key(settings: StallSettings) -> bytes:
    env = os.environ.get("SHIAN_TICKET_KEY")
    if env:
        return bytes.fromhex(env.strip())
    return read_key(settings.ticket_key_file)


class Stall:
    def __init__(self, settings: StallSettings, outbox: Outbox, emit: Emit) -> None:
        self.settings = settings
        self.emit = emit
        self.catalog = Catalog(outbox)
        self.book = TicketBook(outbox, settings, ticket_key(settings))
        self.selected: str | None = None
        self.last_ticket: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self.scale: ScaleReader | None = None
        if settings.scale is not None:
            profile = load_scale_profile(settings.scale.profile)
            rule = profile.stability
            overrides = {
                k: v
                for k, v in (
                    ("frames", settings.scale.stable_frames),
                    ("tolerance_g", settings.scale.tolerance_g),
                )
                if v is not None
            }
            self.scale = ScaleReader(
                settings.scale.port,
                profile,
                Stability(**{**rule.model_dump(), **overrides}),
                on_fault=self._scale_fault,
            )
        link = PrinterLink(settings.printer, load_printer_profile(settings.printer.profile))
        self.printer = PrintWorker(self.book, link, on_fault=self._printer_fault)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.scale:
            self.scale.start()
        self.printer.start()

    def stop(self) -> None:
        if self.scale:
            self.scale.stop()
        self.printer.stop()

    def alive(self) -> bool:
        return self.printer.running and (self.scale is None or self.scale.running)

    def counters(self) -> dict[str, int]:
        c = dict(self.printer.counters)
        c["tickets_pending"] = len(self.book.pending())
        if self.scale:
            c.update(self.scale.counters)
        return c

    # -- faults become events -----------------------------------------------------------------
    def _scale_fault(self, state: str, reason: str) -> None:
        port = self.settings.scale.port if self.settings.scale else ""
        self._emit("scale_fault", {"state": state, "port": port, "reason": reason[:512]})

    def _printer_fault(self, state: str, reason: str, pending: int) -> None:
        self._emit(
            "printer_fault",
            {
                "state": state,
                "printer": self.settings.printer.connection,
                "reason": reason[:512],
                "pending": pending,
            },
        )

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self.emit(kind, data)
        except Exception:
            log.exception("could not queue %s", kind)

    # -- the vendor's actions -----------------------------------------------------------------
    @property
    def weight(self) -> Weight:
        return self.scale.weight if self.scale else Weight("no_data")

    def settle(self, timeout: float = 3.0) -> Weight:
        """Wait for the scale to settle on a weight that can be sold (the vendor pressed print
        while the scale was still moving)."""
        if self.scale is None:
            return self.weight
        return self.scale.wait_for(lambda w: w.sellable, timeout)

    def select(self, plu: str) -> None:
        if self.catalog.get(plu) is None:
            raise SaleRefused(f"no product with PLU {plu}")
        self.selected = plu

    def sell(self, plu: str | None = None, pieces: int | None = None) -> dict[str, Any]:
        """Make, commit and queue for printing one ticket; :class:`SaleRefused` says why not."""
        with self._lock:
            plu = plu or self.selected
            if not plu:
                raise SaleRefused("choose a product first")
            product = self.catalog.get(plu)
            if product is None:
                raise SaleRefused(f"no product with PLU {plu}")
            ticket = self.book.issue(product, self.weight, pieces)
            self.last_ticket = ticket
        self.printer.wake()
        return {"ticket": ticket, "url": self.book.url(ticket)}

    def state(self) -> dict[str, Any]:
        product = self.catalog.get(self.selected) if self.selected else None
        last = self.last_ticket
        return {
            "weight": self.weight.as_json(),
            "selected": product.model_dump(mode="json") if product else None,
            "catalog": [p.model_dump(mode="json") for p in self.catalog.all()],
            "last_ticket": {"ticket": last, "url": self.book.url(last)} if last else None,
            "printer": {"fault": self.printer.fault, "pending": len(self.book.pending())},
        }
