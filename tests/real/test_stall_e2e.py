"""A stall end to end: catalog pushed from the cloud, a scale on a pseudo-terminal, a sale
through the local API, the ticket printed, stored in the cloud, and its public page checked in
a real headless Chromium (genuine, and not genuine once the signature is altered)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_main
from cloud.service import CloudService
from edge.agent import Agent
from edge.stall.virtual import VirtualScale, made_up_frames
from shared.signing import new_key, write_key
from tests.conftest import (
    ARTIFACTS,
    cloud_config,
    edge_config,
    register,
    stall_section,
    wait_for,
    write_toml,
)
from tests.support.escpos_decode import decode
from tests.support.mosquitto import Mosquitto, free_port
from tests.test_tickets_printing import CSV

pytestmark = pytest.mark.real


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_sale_from_scale_to_the_buyers_phone(
    tmp_path: Path, mosquitto: Mosquitto, browser: Any
) -> None:
    key = new_key()
    web_port, api_port = free_port(), free_port()
    ccfg = cloud_config(tmp_path, mosquitto.url, web_port=web_port)
    write_key(ccfg.tickets.keys_dir / "stall-7.key", key)
    cloud = CloudService(ccfg)
    register(cloud.store, "stall-7", "canteen-001", "stall", market="华信农贸市场", stall_no="A-07",
             retailer="李四")  # fmt: skip
    cloud.start()
    link = tmp_path / "ttyScale"
    data, end = made_up_frames(1234.0)
    scale = VirtualScale(link, data, end, rate_hz=20).start()
    printer_file = tmp_path / "printer.bin"
    agent = Agent(
        edge_config(
            tmp_path,
            mosquitto.url,
            device="stall-7",
            stall=stall_section(
                tmp_path,
                key,
                f"http://127.0.0.1:{web_port}",
                scale={"port": str(link), "profile": "ad_st_gs"},
                printer={"connection": f"file:{printer_file}"},
            ),
            display={"port": api_port},
        )
    )
    agent.start()
    api = f"http://127.0.0.1:{api_port}/api/stall"
    try:
        csv_file = tmp_path / "products.csv"
        csv_file.write_text(CSV, encoding="utf-8")
        conf = write_toml(
            tmp_path / "cloud.toml",
            ccfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
        )
        r = CliRunner().invoke(
            cloud_main, ["catalog", "push", "stall-7", str(csv_file), "--config", str(conf)]
        )
        assert r.exit_code == 0, r.output
        wait_for(lambda: len(http("GET", api)[1]["catalog"]) == 2, what="catalog on the box")

        status, body = http("POST", api + "/print", {})
        assert status == 409 and "choose a product" in body["error"]
        assert http("POST", api + "/select", {"plu": "999"})[0] == 409
        assert http("POST", api + "/select", {"plu": "101"})[0] == 200
        wait_for(lambda: http("GET", api)[1]["weight"]["sellable"], what="a stable weight")
        status, sold = http("POST", api + "/print", {})
        assert status == 200, sold
        ticket, url = sold["ticket"], sold["url"]
        assert ticket["quantity"] == 1230 and ticket["total_cents"] == 467  # 1.23 kg x 3.80

        wait_for(
            lambda: printer_file.exists() and decode(printer_file.read_bytes()).cut,
            what="the printed ticket",
        )
        assert decode(printer_file.read_bytes()).qr_native == [url.encode()]
        wait_for(
            lambda: cloud.store.tickets.get(ticket["ticket_id"]), what="the ticket in the cloud"
        )

        ARTIFACTS.mkdir(exist_ok=True)
        page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        page.goto(url)
        assert page.locator("#verdict").get_attribute("data-status") == "genuine"
        body_text = page.locator("body").inner_text()
        for expected in (
            "真实票据",
            "Genuine",
            "白菜",
            "湖北咸宁",
            "HX20261125-03",
            "合格",
            "A-07",
            "1.230 kg",
            "¥4.67",
        ):
            assert expected in body_text, expected
        page.screenshot(path=str(ARTIFACTS / "ticket-genuine.png"), full_page=True)

        altered = url[:-1] + ("a" if url[-1] != "a" else "b")
        page.goto(altered)
        assert page.locator("#verdict").get_attribute("data-status") == "not_genuine"
        assert "Not genuine" in page.locator("body").inner_text()
        assert "白菜" not in page.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "ticket-not-genuine.png"), full_page=True)

        forged = url.replace(ticket["ticket_id"], "a" * 26)
        page.goto(forged)
        assert page.locator("#verdict").get_attribute("data-status") == "unknown"
        page.close()

        status, j = http("GET", url.replace("?s=", ".json?s="))
        assert status == 200 and j["status"] == "genuine" and j["ticket"] == ticket

        def heartbeat_counters() -> dict[str, int] | None:
            st = cloud.store.devices.list()[0]["last_status"] or {}
            c = st.get("counters", {})
            return c if c.get("printer_jobs") else None

        c = wait_for(heartbeat_counters, what="stall counters in a heartbeat")
        assert c["scale_frames"] > 0 and c["scale_checksum_errors"] == 0
        assert "scale_frame_errors" in c and c["tickets_pending"] == 0
    finally:
        agent.stop()
        scale.stop()
        cloud.stop()
