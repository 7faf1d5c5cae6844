"""The kitchens' purchase ledgers, as the city sees them. This module owns the ``purchases``
table (migration 12).

Each ``purchase`` event a kitchen sends is kept here, in the batch's transaction. When it names
a market stall's ticket, the ticket must be one this collector holds, with the signature its QR
code carried. Then the purchase is linked to the stall that sold it, and the ticket's batch is
the batch (a kitchen's typing does not override the stall's record). A ticket that does not
match is kept as the kitchen wrote it, marked ``unknown`` or ``not_genuine``, never linked.

So one query answers "which canteens bought batch X from stall Y, and how much" (:func:`trace`),
and a batch that fails a test is recalled from every kitchen that took it (:func:`recall`): an
alert per site, its rectification (take it out of use) requested of the site's boxes.
"""

from __future__ import annotations

import json
from typing import Any

from cloud.db import Conn, Db
from cloud.ranges import select_in
from shared.models import Envelope

RECALL_DUE_S = 4 * 3600.0
"""A recalled batch must be out of use within hours, not the days of a routine finding."""


def insert(conn: Conn, events: list[Envelope], now: float) -> None:
    """Keep the batch's new purchases, each linked to its ticket when the ticket checks, and
    count what each kitchen took out of its own."""
    purchases = [e for e in events if e.kind == "purchase"]
    if purchases:
        _link(conn, purchases, now)
    taken = [(float(e.data["quantity"]), e.data["lot"], e.site) for e in events
             if e.kind == "stock_out"]  # fmt: skip
    if taken:  # a kitchen counts only against its own purchases
        conn.executemany("UPDATE purchases SET used = used + ? WHERE id = ? AND site = ?", taken)


def _link(conn: Conn, purchases: list[Envelope], now: float) -> None:
    named = [e.data["ticket"] for e in purchases if e.data.get("ticket")]
    tickets = {r[0]: (r[1], json.loads(r[2])) for r in select_in(
        conn, "SELECT ticket_id, device, data FROM tickets", "ticket_id", named)}  # fmt: skip
    rows = []
    for e in purchases:
        d, stall, state, batch = e.data, "", "none", e.data.get("batch", "")
        if d.get("ticket"):
            held = tickets.get(d["ticket"])
            if held is None:
                state = "unknown"
            elif held[1].get("sig") != d.get("ticket_sig"):
                state = "not_genuine"
            else:
                stall, state, batch = held[0], "linked", held[1].get("batch", batch)
        rows.append((e.id, e.site, e.device, d["supplier"], d["product"], batch,
                     float(d["quantity"]), d["unit"], d.get("expires"), d.get("ticket"), stall,
                     state, now))  # fmt: skip
    conn.executemany(
        "INSERT INTO purchases (id, site, device, supplier, product, batch, quantity, unit,"
        " expires, ticket, stall, ticket_state, received) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT DO NOTHING",
        rows,
    )


def trace(db: Db, batch: str, stall: str = "") -> list[dict[str, Any]]:
    """Every kitchen that took ``batch`` (from ``stall``, when given), with how much, when,
    its use-by date and its district: one indexed query."""
    sql = (
        "SELECT p.site, s.district, s.name, p.device, p.product, p.batch, p.stall, p.quantity,"
        " p.used, p.quantity - p.used AS left_over, p.unit, p.expires, p.ticket,"
        " p.ticket_state, p.received FROM purchases p"
        " LEFT JOIN sites s ON s.site = p.site WHERE p.batch = ?"
    )
    params: list[Any] = [batch[:32]]
    if stall:
        sql += " AND p.stall = ?"
        params.append(stall[:64])
    return db.query(sql + " ORDER BY p.received", params)


def recall(store: Any, batch: str, stall: str, reason: str, actor: str, now: float) -> list[str]:
    """Recall ``batch`` (from ``stall``) from every site that took it: per site an alert of
    type ``recall``, its rectification requested at once of the site's boxes. The alerts'
    ids; ValueError when nobody took it."""
    if not stall:
        raise ValueError("name the stall the batch came from (a batch number is the stall's)")
    held = trace(store.db, batch, stall)
    if not held:
        raise ValueError(f"no kitchen recorded batch {batch!r} from {stall}")
    engine = store.engine
    if engine is None:
        raise ValueError("this collector runs no alert engine")
    sites = {r["site"]: r for r in held}

    def apply(conn: Conn) -> list[str]:
        made = []
        for site, r in sorted(sites.items()):
            title = f"召回 Recall: {r['product']} batch {batch} from {stall}: {reason}"[:200]
            a = engine.raise_(conn, now, site=site, type="recall", source=f"{stall}.{batch}",
                              title=title, severity="critical", quiet=True)  # fmt: skip
            state = conn.execute("SELECT state FROM alerts WHERE id = ?", (a["id"],)).fetchone()
            if state is not None and state[0] in ("open", "acknowledged"):  # not yet asked
                engine.act(conn, now, a["id"], "request_rectification", actor,
                           f"stop using batch {batch}, keep it apart, report what is left: "
                           f"{reason}", RECALL_DUE_S)  # fmt: skip
            else:  # recalled before: the kitchen already has its notice
                engine.publish(conn, a["id"], now)
            made.append(a["id"])
        return made

    ids: list[str] = store.in_transaction(apply)
    return ids
