"""A stall's ticket scanned into two canteens' ledgers and the batch traced and recalled, through
a real Mosquitto and collector: each kitchen box asks the collector's public page for the
ticket (never the host the code names), records the delivery, and sends it; the collector links
both to the stall's ticket; the recall reaches both boxes as a notice, and one answers it.

The stall's sale enters the collector through its store's write path, as the stall's batch
would (the stall's own box and printer are tested end to end in test_stall_e2e.py)."""

from __future__ import annotations

import json
import os
import pty
import time
import tty
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.purchases import recall, trace
from cloud.service import CloudService
from cloud.tickets import TicketKeys
from edge.agent import Agent
from edge.cli import main as edge_main
from shared.signing import new_key, write_key
from tests.conftest import ARTIFACTS, cloud_config, edge_config, register, wait_for, write_toml
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.tickets import signed_ticket
from tests.test_alerts_engine import ev, feed

pytestmark = pytest.mark.real


def scan(conf: Path, code: str, *more: str) -> Result:
    """What a scanner typed, recorded with the box's own command."""
    return CliRunner().invoke(edge_main, ["ledger", "scan", code, "--by", "李四", *more,
                                          "--config", str(conf)])  # fmt: skip


@dataclass
class Market:
    cloud: CloudService
    sold: dict[str, Any]
    base: str
    tmp: Path
    url: str

    @property
    def code(self) -> str:
        """What a scanner types from the ticket's QR code (another host than the box asks)."""
        return f"https://elsewhere.example/t/{self.sold['ticket_id']}?s={self.sold['sig']}"

    def kitchen(self, box: str, site: str, **more: Any) -> tuple[Agent, Path]:
        ledger = {"trace_url": self.base, **more.pop("ledger", {})}
        ecfg = edge_config(self.tmp, self.url, device=box, site=site, ledger=ledger, **more)
        written = ecfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        conf = write_toml(self.tmp / f"{box}.toml", written)
        agent = Agent(ecfg)
        agent.start()
        return agent, conf


@pytest.fixture
def market(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Market]:
    """A collector holding one sale of stall-7's cabbage, and two canteens registered."""
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
    yield Market(cloud, sold, f"http://127.0.0.1:{port}", tmp_path, mosquitto.url)
    cloud.stop()


def test_a_scanned_ticket_is_traced_and_recalled_across_two_kitchens(market: Market) -> None:
    store, sold = market.cloud.store, market.sold
    agents: list[Agent] = []
    try:
        for box, site in (("kitchen-1", "canteen-001"), ("kitchen-2", "canteen-002")):
            agent, conf = market.kitchen(box, site)
            agents.append(agent)
            got = scan(conf, market.code, "--expires", "2026-12-05")
            assert got.exit_code == 0, got.output
            assert json.loads(got.output)["quantity"] == 12.5
            bad = scan(conf, market.code.replace(sold["sig"], "a" * 16))  # a forged signature
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


def test_the_hall_screen_takes_a_scanned_ticket_into_stock(market: Market, browser: Any) -> None:
    port = free_port()
    agent, _ = market.kitchen("kitchen-1", "canteen-001", display={"port": port})
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"http://127.0.0.1:{port}/hall")
        page.fill("#scan-form [name=by]", "李四")
        page.fill("#scan", market.code)  # the scanner types the link, then Enter
        page.press("#scan", "Enter")
        lot = page.wait_for_selector("#stock li[data-lot]")
        assert "白菜" in lot.inner_text() and "12.5 kg" in lot.inner_text()
        # the screen's answers come as dialogs: answered at once, however soon they open
        page.on("dialog", lambda d: d.accept("4.5" if d.type == "prompt" else None))
        page.fill("#scan", "not a ticket")
        with page.expect_event("dialog") as refusal:  # the screen says why
            page.press("#scan", "Enter")
        assert "not a market ticket" in refusal.value.message
        page.click("#stock button.out")  # asks how much: 4.5 kg
        page.wait_for_function("document.querySelector('#stock').innerText.includes('8 kg')")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hall-ledger.png"))
    finally:
        page.close()
        agent.stop()

    def counted() -> list[dict[str, Any]]:
        return [r for r in trace(market.cloud.store.db, "HX20261125-03") if r["used"] == 4.5]

    rows = wait_for(counted, what="the stock out at the collector")
    assert rows[0]["left_over"] == 8.0


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    path=st.sampled_from(["/api/ledger/scan", "/api/ledger", "/api/stock/out"]),
    body=st.binary(max_size=300)
    | st.dictionaries(
        st.sampled_from(
            [
                "code",
                "by",
                "supplier",
                "product",
                "quantity",
                "unit",
                "lot",
                "expires",
                "category",
                "reason",
                "batch",
            ]
        ),
        st.none() | st.text(max_size=80) | st.floats() | st.integers(),
        max_size=8,
    ).map(lambda d: json.dumps(d).encode()),
)
def test_any_ledger_request_on_the_screen_is_recorded_or_refused_with_a_reason(
    screen: tuple[Agent, int], path: str, body: bytes
) -> None:
    _, port = screen
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, answer = r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, json.loads(exc.read())
    assert status in (200, 400), (status, answer)
    assert answer.get("ok") or answer["error"]


@pytest.fixture
def screen(market: Market) -> Iterator[tuple[Agent, int]]:
    port = free_port()
    agent, _ = market.kitchen("kitchen-2", "canteen-002", display={"port": port})
    wait_for(lambda: agent.web is not None, what="the screen")
    yield agent, port
    agent.stop()


def test_a_serial_scanner_at_the_door_records_each_code(market: Market) -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    link = market.tmp / "ttyScanner"
    link.symlink_to(os.ttyname(slave))
    agent, _ = market.kitchen("kitchen-1", "canteen-001",
                              ledger={"scanner_port": str(link), "scanner_by": "门卫"})  # fmt: skip
    try:
        assert agent.scanner is not None and agent.stock is not None
        wait_for(lambda: agent.scanner.connected, what="the scanner's port open")  # type: ignore[union-attr]
        os.write(master, b"\x00\xfe\xff garbage\r\n")  # noise on the line: refused, said why
        wait_for(lambda: agent.scanner.last.get("ok") is False, what="the refusal")  # type: ignore[union-attr]
        forged = market.code.replace(market.sold["sig"], "b" * 16)
        os.write(master, forged.encode() + b"\r")
        wait_for(lambda: "not_genuine" in agent.scanner.last.get("message", ""),  # type: ignore[union-attr]
                 what="the forged ticket refused")  # fmt: skip
        os.write(master, market.code.encode() + b"\r")  # the ticket, as the scanner sends it
        lots = wait_for(lambda: agent.stock.lots(), what="the delivery in stock")  # type: ignore[union-attr]
        assert lots[0]["product"] == "白菜" and lots[0]["left"] == 12.5
        assert agent.scanner.last["ok"] and "recorded" in agent.scanner.last["message"]
    finally:
        agent.stop()
        os.close(master)
        os.close(slave)
