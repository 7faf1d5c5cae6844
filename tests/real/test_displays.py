"""The hall screen and the stall screen in a real headless Chromium (Debian's, via Playwright):
nine live views that update, an alert in the ticker within a second, the morning check form;
the stall's weight following a pseudo-terminal scale, touch a product and print."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from edge.agent import Agent
from edge.stall.virtual import VirtualScale, made_up_frames
from edge.vision.scenes import empty_scene, intruder_scene, write_video
from tests.conftest import ARTIFACTS, edge_config, stall_section, wait_for
from tests.real.test_detector_real import IMAGES, MODELS, TESTDATA
from tests.support.escpos_decode import decode
from tests.support.mosquitto import Mosquitto, free_port
from tests.test_alerts_engine import violation
from tests.test_tickets_printing import CSV

pytestmark = pytest.mark.real
needs_data = pytest.mark.skipif(not TESTDATA.exists(), reason="shared test data missing")


WHOLE = """[...document.querySelectorAll('#wall .view')].map(v => {
  const img = v.querySelector('img'), box = img.getBoundingClientRect();
  const frame = img.naturalWidth / img.naturalHeight, tile = box.width / box.height;
  return getComputedStyle(img).objectFit === 'contain' && Math.abs(tile / frame - 1) < 0.05;
})"""
"""Each view: the frame whole (contain, not cover) in a tile of the frame's own shape."""


def hall(tmp_path: Path, url: str, sources: list[Path], **kitchen: Any) -> tuple[Agent, int]:
    """A kitchen box with a camera per source and its screens on a free port, started."""
    port = free_port()
    cameras = [{"name": f"cam{i}", "source": str(s)} for i, s in enumerate(sources, 1)]
    kitchen = {"model": "ssd_oidv4", "models_dir": str(MODELS), "cameras": cameras, **kitchen}
    agent = Agent(edge_config(tmp_path, url, kitchen=kitchen, display={"port": port}))
    agent.start()
    return agent, port


@needs_data
@pytest.mark.parametrize("cameras", [1, 3])
def test_the_hall_screen_shows_every_view_whole(
    tmp_path: Path, mosquitto: Mosquitto, browser: Any, cameras: int
) -> None:
    still = write_video(tmp_path / "still.avi", empty_scene(IMAGES / "hot_dog.jpg"))
    agent, port = hall(tmp_path, mosquitto.url, [still] * cameras)
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"http://127.0.0.1:{port}/hall")
        page.wait_for_function(
            f"[...document.querySelectorAll('#wall img')].filter(i => i.naturalWidth).length"
            f" === {cameras}",
            timeout=15_000,
        )
        # laid out again for the first frame's own shape, then every view whole
        page.wait_for_function(f"({WHOLE}).every(Boolean)", timeout=5_000)
        assert page.evaluate(WHOLE) == [True] * cameras
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"hall-screen-{cameras}.png"))
    finally:
        page.close()
        agent.stop()


@needs_data
def test_hall_screen(tmp_path: Path, mosquitto: Mosquitto, browser: Any) -> None:
    cat = write_video(
        tmp_path / "cat.avi",
        intruder_scene(IMAGES / "hot_dog.jpg", IMAGES / "cat_720p.jpg", (140, 100, 910, 720)),
    )
    still = write_video(tmp_path / "still.avi", empty_scene(IMAGES / "hot_dog.jpg"))
    agent, port = hall(
        tmp_path,
        mosquitto.url,
        [cat] + [still] * 8,
        rules=[{"violation": "animal_in_kitchen", "labels": ["Cat"]}],
    )
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        assert page.url.endswith("/hall")
        page.wait_for_function("document.querySelectorAll('#wall img').length === 9")
        page.wait_for_function(
            "[...document.querySelectorAll('#wall img')].every(i => i.naturalWidth > 0)",
            timeout=15_000,
        )
        page.wait_for_function(f"({WHOLE}).every(Boolean)", timeout=5_000)  # every view whole
        sent = agent.web.config.app.state.frames_sent  # type: ignore[union-attr]
        first = dict(sent)
        wait_for(
            lambda: len(sent) == 9 and all(sent[c] >= first.get(c, 0) + 3 for c in sent),
            what="every view updating",
        )
        t0 = time.monotonic()
        agent.emit("violation", violation("cam9", "rodent"))
        page.wait_for_function(
            "document.querySelector('#ticker').textContent.includes('鼠患')", timeout=1000
        )
        assert time.monotonic() - t0 < 1.5
        page.fill("#check-form input[name=staff]", "李月咸")
        page.fill("#check-form input[name=temperature]", "36.6")
        page.click("#check-form button")
        page.wait_for_function("document.querySelector('#checks').textContent.includes('李月咸')")
        assert any(
            e["kind"] == "morning_check" and e["data"]["staff"] == "李月咸"
            for e in agent.outbox.recent(50)
        )
        page.fill("#dis-form input[name=area]", "餐具")
        page.fill("#dis-form input[name=by]", "黄万里")
        page.click("#dis-form button")
        page.wait_for_function(
            "document.querySelector('#disinfections').textContent.includes('餐具')"
        )
        page.click("#lang")
        page.wait_for_function("document.querySelector('#ticker').textContent.includes('Rodent')")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hall-screen.png"))
    finally:
        page.close()
        agent.stop()


def test_stall_screen(tmp_path: Path, mosquitto: Mosquitto, browser: Any) -> None:
    link, port = tmp_path / "ttyScale", free_port()
    data, end = made_up_frames(500.0)
    scale = VirtualScale(link, data, end, rate_hz=20).start()
    printer = tmp_path / "printer.bin"
    agent = Agent(
        edge_config(
            tmp_path,
            mosquitto.url,
            device="stall-7",
            stall=stall_section(
                tmp_path,
                scale={"port": str(link), "profile": "ad_st_gs"},
                printer={"connection": f"file:{printer}"},
            ),
            display={"port": port},
        )
    )
    from shared.catalog import parse_csv

    assert agent.stall is not None
    agent.stall.catalog.replace(parse_csv(CSV), "test")
    agent.start()
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        assert page.url.endswith("/stall")
        page.wait_for_function("Number(document.querySelector('#weight').dataset.grams) === 500")
        scale.stop()  # the vendor puts something else on: a new scale stream
        data, end = made_up_frames(1234.0)
        scale = VirtualScale(link, data, end, rate_hz=20).start()
        page.wait_for_function(
            "Number(document.querySelector('#weight').dataset.grams) === 1230", timeout=20_000
        )
        page.click("#products button:has-text('白菜')")
        page.wait_for_function("!document.querySelector('#print').disabled")
        assert page.text_content("#total") == "¥4.67"
        page.click("#print")
        page.wait_for_selector("#ticket img")
        tickets = [e for e in agent.outbox.recent(50) if e["kind"] == "ticket"]
        assert len(tickets) == 1 and tickets[0]["data"]["quantity"] == 1230
        wait_for(
            lambda: printer.exists() and decode(printer.read_bytes()).qr_native,
            what="the ticket at the printer",
        )
        assert tickets[0]["data"]["ticket_id"] in decode(printer.read_bytes()).text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "stall-screen.png"))
    finally:
        page.close()
        agent.stop()
        scale.stop()


def test_screens_refuse_bad_bodies_with_a_reason(tmp_path: Path, mosquitto: Mosquitto) -> None:
    import urllib.error
    import urllib.request

    port = free_port()
    agent = Agent(
        edge_config(
            tmp_path,
            mosquitto.url,
            device="stall-7",
            stall=stall_section(tmp_path),
            display={"port": port},
        )
    )
    agent.start()

    def post(path: str, body: bytes) -> tuple[int, str]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    try:
        code, text = post("/api/stall/print", b"{nope")
        assert code == 409 and "not JSON" in text
        code, text = post("/api/stall/select", b"[1]")
        assert code == 409 and "JSON object" in text
        code, text = post("/api/stall/print", b'{"plu": "101", "pieces": "many"}')
        assert code == 409
        code, text = post("/api/morning-check", b'{"staff": "x", "temperature": 50}')
        assert code == 400 and "temperature" in text
        code, text = post("/api/morning-check", b'{"staff": "", "temperature": 36.5}')
        assert code == 400 and "staff" in text
        code, text = post("/api/disinfection", b"{nope")
        assert code == 400
        assert not [
            e
            for e in agent.outbox.recent(50)
            if e["kind"] in ("morning_check", "disinfection", "ticket")
        ]
    finally:
        agent.stop()
