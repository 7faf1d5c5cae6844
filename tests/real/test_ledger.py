"""A stall's ticket scanned into two canteens' ledgers and the batch traced and recalled, through
a real Mosquitto and collector: each kitchen box asks the collector's public page for the
ticket (never the host the code names), records the delivery, and sends it; the collector links
both to the stall's ticket; the recall reaches both boxes as a notice, and one answers it.

The stall's sale enters the collector through its store's write path, as the stall's batch
would (the stall's own box and printer are tested end to end in test_stall_e2e.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cloud.purchases import recall, trace
from cloud.service import CloudService
from cloud.tickets import TicketKeys
from edge.agent import Agent
from edge.cli import main as edge_main
from shared.signing import new_key, write_key
from tests.conftest import cloud_config, edge_config, register, wait_for, write_toml
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.tickets import signed_ticket
from tests.test_alerts_engine import ev, feed

pytestmark = pytest.mark.real


def scan(conf: Path, code: str, *more: str) -> Result:
    """What a scanner typed, recorded with the box's own command."""
    return CliRunner().invoke(edge_main, ["ledger", "scan", code, "--by", "李四", *more,
                                          "--config", str(conf)])  # fmt: skip


def test_a_scanned_ticket_is_traced_and_recalled_across_two_kitchens(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    port = free_port()
    cfg = cloud_config(tmp_path / "cloud", mosquitto.url, web_port=port)
    cloud = CloudService(cfg)
    store = cloud.store
    for site in ("canteen-001", "canteen-002", "m1"):
        store.sites.set(site, "xianan")
    register(store, "kitchen-1", "canteen-001", district="xianan")
    register(store, "kitchen-2", "canteen-002", district="xianan")
    register(store, "stall-7", "m1", role="stall", district="xianan")
    key = new_key()
    write_key(TicketKeys(cfg.tickets.keys_dir).path("stall-7", ""), key)
    sold = signed_ticket(key, market="m1", stall="stall-7", batch="HX20261125-03",
                         product="白菜", quantity=12500)  # fmt: skip
    feed(store, [ev("ticket", sold, 1, "stall-7", "m1")], device="stall-7")
    cloud.start()
    base = f"http://127.0.0.1:{port}"
    agents: list[Agent] = []
    try:
        for box, site in (("kitchen-1", "canteen-001"), ("kitchen-2", "canteen-002")):
            ecfg = edge_config(tmp_path, mosquitto.url, device=box, site=site,
                               ledger={"trace_url": base})  # fmt: skip
            conf = write_toml(tmp_path / f"{box}.toml",
                              ecfg.model_dump(mode="json", exclude_none=True,
                                              exclude_defaults=True))  # fmt: skip
            agent = Agent(ecfg)
            agent.start()
            agents.append(agent)
            # the scanner types the QR code's link; its host is not the one the box asks
            code = f"https://elsewhere.example/t/{sold['ticket_id']}?s={sold['sig']}"
            got = scan(conf, code, "--expires", "2026-12-05")
            assert got.exit_code == 0, got.output
            assert json.loads(got.output)["quantity"] == 12.5
            bad = scan(conf, code.replace(sold["sig"], "a" * 16))  # a forged signature
            assert bad.exit_code == 1 and "not_genuine" in bad.output

        def both() -> list[dict[str, object]]:
            rows = trace(store.db, "HX20261125-03", "stall-7")
            return rows if len(rows) == 2 else []

        held = wait_for(both, what="both purchases at the collector")
        assert {(r["site"], r["ticket_state"], r["quantity"]) for r in held} == {
            ("canteen-001", "linked", 12.5), ("canteen-002", "linked", 12.5)}  # fmt: skip
        ids = recall(store, "HX20261125-03", "stall-7", "农残超标", "operator", time.time())
        assert len(ids) == 2
        for agent, alert in zip(agents, ids, strict=True):
            wait_for(lambda a=agent, i=alert: [n for n in a.notices.list()
                                               if n["id"] == i and n["type"] == "recall"],
                     what="the recall on the box")  # fmt: skip
        agents[0].notices.rectify(ids[0], "余 2 kg 已封存 2 kg left, set apart")
        wait_for(lambda: store.alerts.get(ids[0])["state"] == "rectified", what="answered")
    finally:
        for agent in agents:
            agent.stop()
        cloud.stop()
