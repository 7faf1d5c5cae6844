"""A site's public page (/k/{site}) in Debian's Chromium at a phone's size: in Chinese and in
English, the grade as a face, the licence, today's checks done or not, the violations of the
last 30 days with their state; and no private field (a test looks for each)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cloud.alerts.engine import AlertEngine
from cloud.cli import main as cloud_main
from cloud.config import AlertSettings
from cloud.store import Store
from cloud.web import make_app
from shared.webserver import WebServer
from tests.conftest import ARTIFACTS, register
from tests.test_alerts_engine import act, ev, feed, violation

pytestmark = pytest.mark.real
PRIVATE = ["kitchen-1", "cam7", "李月咸", "36.6", "/snap/", "secret-key", "shian/v1", "password"]
"""Each must never appear: the box, the camera, the staff member and temperature, evidence."""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Store, WebServer]]:
    store = Store(tmp_path / "c.db", tmp_path / "snaps", engine=AlertEngine(AlertSettings()))
    store.sites.set("canteen-001", "xianan", "实验外国语学校食堂")
    store.sites.describe("canteen-001", "school_canteen", "good", time.time())
    register(store, "kitchen-1", "canteen-001", district="xianan")
    store.sites.add_supervisor("wang", "xianan")
    store.sites.import_certs(
        "site,kind,holder,number,expires\n"
        "canteen-001,food_operation_licence,实验外国语学校,JY14201020012345,2028-05-31\n"
    )
    now = time.time()
    check = {"staff": "李月咸", "temperature": 36.6, "symptoms": [], "fit": True}
    feed(store, [ev("morning_check", check, 1, "kitchen-1", "canteen-001")], now, "kitchen-1")
    feed(
        store,
        [ev("violation", violation("cam7", "rodent"), 2, "kitchen-1", "canteen-001")],
        now,
        "kitchen-1",
    )
    (alert,) = store.alerts.list()
    act(store, alert["id"], "ack", now=now)
    web = WebServer(make_app(store, tmp_path / "keys"), "127.0.0.1", 0)
    web.start()
    yield store, web
    web.stop()
    store.close()


def test_the_public_page_on_a_phone(site: tuple[Store, WebServer], browser: Any) -> None:
    _, web = site
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    try:
        page.goto(f"http://127.0.0.1:{web.port}/k/canteen-001")
        text = page.inner_text("main")
        for shown in ("实验外国语学校食堂", "学校食堂", "School canteen", "优秀", "Good",
                      "JY14201020012345", "2028-05-31", "晨检", "已完成", "消毒", "未完成",
                      "鼠患", "Rodent", "已受理", "Acknowledged"):  # fmt: skip
            assert shown in text, shown
        assert page.locator("svg[aria-label=Good]").count() == 1
        content = page.content()
        for hidden in PRIVATE:
            assert hidden not in content, f"{hidden!r} leaked"
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.reload()
        assert all(u.startswith(f"http://127.0.0.1:{web.port}/") for u in requests), requests
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "site-page.png"), full_page=True)
    finally:
        page.close()


def test_the_json_leaks_nothing_private_and_an_unknown_site_is_a_404(
    site: tuple[Store, WebServer], browser: Any
) -> None:
    import urllib.error
    import urllib.request

    _, web = site
    with urllib.request.urlopen(f"http://127.0.0.1:{web.port}/k/canteen-001.json") as r:
        body = r.read().decode()
    doc = json.loads(body)
    assert doc["today"]["morning_check"] and not doc["today"]["disinfection"]
    assert [v["type"] for v in doc["violations"]] == ["rodent"]
    for hidden in PRIVATE:
        assert hidden not in body, f"{hidden!r} leaked"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{web.port}/k/nowhere")
    assert err.value.code == 404


def test_sites_qr_prints_the_link_and_a_png_that_decodes_to_it(tmp_path: Path) -> None:
    import zxingcpp
    from PIL import Image

    conf = tmp_path / "cloud.toml"
    conf.write_text(
        f'data_dir = "{tmp_path}"\n[provisioning]\nticket_base_url = "https://trace.example"\n'
    )
    out = tmp_path / "qr.png"
    r = CliRunner().invoke(
        cloud_main, ["sites", "qr", "canteen-001", "--out", str(out), "--config", str(conf)]
    )
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "https://trace.example/k/canteen-001"
    (found,) = zxingcpp.read_barcodes(Image.open(out))
    assert found.text == "https://trace.example/k/canteen-001"
    r = CliRunner().invoke(cloud_main, ["sites", "qr", "a/b", "--config", str(conf)])
    assert r.exit_code == 1 and "not a valid name" in r.output
