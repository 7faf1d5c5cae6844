"""Storage (仓储) against the ledger. This module owns the box's ``stock`` table (migration 5).

Every purchase is a lot, recorded in the same transaction as its ``purchase`` event. Stock is
taken out of a lot (``stock_out``: used, discarded, returned), never below zero. The lots in
stock are listed first-expired first-out. A lot near its use-by date, by its product class's
rule in days, and a lot past it, each send ``stock_expiry`` once; a warned lot that is used up
sends ``cleared``.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from edge.notices import Notices
from edge.store.outbox import Outbox, OutboxError
from edge.store.snapshots import SnapshotQueue
from shared.kinds import Purchase, StockExpiry, StockOut

log = logging.getLogger("shian.ledger")

NEAR_DAYS: dict[str, int] = {
    "vegetable": 1, "fruit": 2, "meat": 1, "aquatic": 1, "egg": 3, "dairy": 2, "frozen": 7,
    "grain": 30, "oil": 30, "condiment": 30, "other": 3,
}  # fmt: skip
"""Days before its use-by date that a lot of each class is near expiry (a site may set its
own in ``[ledger] near_expiry_days``)."""

COLUMNS = "lot, product, batch, category, unit, quantity, left, expires, received, warned"


class Stock:
    def __init__(self, outbox: Outbox, near_days: dict[str, int] | None = None,
                 tz_offset_h: float = 8) -> None:  # fmt: skip
        self.outbox = outbox
        self.near_days = {**NEAR_DAYS, **(near_days or {})}
        self.tz = timezone(timedelta(hours=tz_offset_h))

    def record(self, data: dict[str, Any], photos: dict[str, Path] | None = None,
               evidence_dir: Path | None = None) -> str:  # fmt: skip
        """Queue a purchase and put its lot in stock, in one transaction; the event's id.
        ``photos``: ``licence_photo`` and ``report_photo`` files, sent as snapshots with it."""
        kept = {field: Notices.keep_photo(path, evidence_dir or Path("evidence"))
                for field, path in (photos or {}).items()}  # fmt: skip
        p = Purchase.model_validate({**data, **{f: snap for f, (snap, _) in kept.items()}})
        snapshots = SnapshotQueue(self.outbox)

        def lot(conn: sqlite3.Connection, queued: Any) -> None:
            for snap_id, path in kept.values():
                snapshots.add(conn, snap_id, path, path.stat().st_size)
            conn.execute(
                f"INSERT INTO stock ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                (queued[0].id, p.product, p.batch, p.category, p.unit, p.quantity, p.quantity,
                 p.expires, self.outbox.clock()),
            )  # fmt: skip

        return self.outbox.enqueue_many([("purchase", p, None)], also=lot)[0].id

    def lots(self) -> list[dict[str, Any]]:
        """What is in stock, first-expired first-out (lots without a date last)."""
        rows = self.outbox.read(
            f"SELECT {COLUMNS} FROM stock WHERE left > 0"
            " ORDER BY expires IS NULL, expires, received"
        )
        names = [c.strip() for c in COLUMNS.split(",")]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def take(self, lot: str, quantity: float, reason: str, by: str) -> str:
        """Take ``quantity`` out of ``lot``; the ``stock_out`` event's id. OutboxError when the
        lot is not in stock or holds less."""
        rows = self.outbox.read(f"SELECT {COLUMNS} FROM stock WHERE lot = ?", (lot[:64],))
        if not rows:
            raise OutboxError(f"no lot {lot[:64]} in stock")
        _, product, batch, _, unit, _, left, expires, _, warned = rows[0]
        if not 0 < quantity <= left + 1e-9:
            raise OutboxError(f"{quantity} {unit} cannot come out of a lot holding {left}")
        now_left = round(max(0.0, left - quantity), 6)
        out = StockOut(lot=lot, product=product, batch=batch, quantity=quantity, left=now_left,
                       reason=reason, by=by)  # type: ignore[arg-type]  # fmt: skip
        events: list[tuple[str, Any, None]] = [("stock_out", out, None)]
        if now_left == 0 and warned and expires:
            events.append(("stock_expiry", StockExpiry(lot=lot, product=product, batch=batch,
                           expires=expires, left=0, unit=unit, state="cleared"), None))  # fmt: skip

        def update(conn: sqlite3.Connection, _queued: Any) -> None:
            done = conn.execute(
                "UPDATE stock SET left = ? WHERE lot = ? AND left = ? AND warned = ?",
                (now_left, lot, left, warned),
            ).rowcount
            if done != 1:  # taken meanwhile by another screen: nothing is sent
                raise OutboxError(f"lot {lot} changed meanwhile; try again")

        return self.outbox.enqueue_many(events, also=update)[0].id

    def check(self, now: float) -> list[str]:
        """Send ``stock_expiry`` for each lot that became near expiry or expired (each once);
        the states sent."""
        today = datetime.fromtimestamp(now, self.tz).date()
        sent = []
        for lot in self.lots():
            try:
                expires = date.fromisoformat(lot["expires"] or "")
            except ValueError:  # no date (or one a release before the check let in)
                continue
            near = expires - timedelta(days=self.near_days.get(lot["category"], 3))
            state = "expired" if today > expires else "near" if today >= near else ""
            if not state or lot["warned"] == state or (lot["warned"] == "expired"):
                continue
            event = StockExpiry(lot=lot["lot"], product=lot["product"], batch=lot["batch"],
                                expires=lot["expires"], left=lot["left"], unit=lot["unit"],
                                state=state)  # type: ignore[arg-type]  # fmt: skip

            def mark(conn: sqlite3.Connection, _q: Any, lot_id: str = lot["lot"],
                     s: str = state, was: str = lot["warned"]) -> None:  # fmt: skip
                done = conn.execute(
                    "UPDATE stock SET warned = ? WHERE lot = ? AND warned = ? AND left > 0",
                    (s, lot_id, was),
                ).rowcount
                if done != 1:  # used up or warned meanwhile: this warning is not sent
                    raise OutboxError(f"lot {lot_id} changed meanwhile")

            try:
                self.outbox.enqueue_many([("stock_expiry", event, None)], also=mark)
            except OutboxError as exc:
                log.info("stock: %s", exc)
                continue
            sent.append(state)
        return sent
