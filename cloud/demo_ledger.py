"""The demo's delivery: the canteen takes in the stall's cabbage and scans the ticket that came
with it (``shian-edge ledger scan``, what a barcode scanner types); the collector links the
purchase to the stall's ticket and traces the batch to the canteen."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any

from cloud.demo_setup import KITCHEN, SITES, STALL

if TYPE_CHECKING:
    from cloud.demo import Demo
    from cloud.store import Store


def story(demo: Demo, store: Store, say: Any, wait: Any) -> bool:
    """True when the batch traces to the canteen, linked to the stall's ticket."""
    from cloud.purchases import trace

    if demo.ticket is None or not demo.ticket_url:
        return False
    kconf = str(demo.w / f"{KITCHEN}.toml")

    def scanned() -> str | None:  # the stall's sale reaches the collector first
        try:
            return demo.run_cli("edge.cli", "ledger", "scan", demo.ticket_url, "--by", "李四",
                                "--config", kconf)  # fmt: skip
        except subprocess.CalledProcessError:
            return None

    wait(scanned, 30, "the ticket genuine at the collector")
    batch = demo.ticket["batch"]
    say(f"the canteen takes in the stall's {demo.ticket['product']} and scans its ticket: "
        f"shian-edge ledger scan {demo.ticket_url}")  # fmt: skip
    rows = wait(lambda: trace(store.db, batch, STALL), 30, "the purchase at the collector")
    r = rows[0]
    say(f"  shian-cloud ledger trace {batch} --stall {STALL}: {r['site']} took "
        f"{r['quantity']} {r['unit']} ({r['ticket_state']} to the ticket)")  # fmt: skip
    return bool(r["site"] == SITES[KITCHEN] and r["ticket_state"] == "linked")
