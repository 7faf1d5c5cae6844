"""The inspector's phone in Debian's headless Chromium, against a real Mosquitto, collector and
box: a supervisor gives a patrol out from the console; the inspector works the checklist on a
phone-sized page, fails an item with a note and a photo the page shrinks before sending it,
and signs the report; the hazard reaches the site's box, the business rectifies it there with
a photo, and the inspector verifies it from the report. Then the boundaries, by direct
requests: who sees a patrol, what an inspector may open, what a photo must be."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cloud.broker_files import BrokerFiles
from cloud.console.photos import MAX_BYTES
from cloud.service import CloudService
from edge.agent import Agent
from tests.conftest import ARTIFACTS, cloud_config, edge_config, register, wait_for
from tests.real.test_console import Client
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.real
PASSWORDS = {"wang": "wang-Pa55-word", "zhao": "zhao-Pa55-word", "qian": "qian-Pa55-word"}
PHONE = {"width": 390, "height": 844}


@dataclass
class City:
    cloud: CloudService
    agent: Agent
    base: str
    tmp: Path

    def login(self, name: str) -> Client:
        c = Client(self.base)
        status, body = c.request("/console/login", {"name": name, "password": PASSWORDS[name]})
        assert status == 200, body[:300]
        return c


@pytest.fixture
def city(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[City]:
    port = free_port()
    cloud = CloudService(cloud_config(tmp_path, mosquitto.url, web_port=port))
    store = cloud.store
    store.sites.set("canteen-001", "xianan", "实验小学食堂")
    store.sites.describe("canteen-001", "school_canteen", None, 0)
    store.sites.set("stall-9", "chibi", "赤壁市场 9 号")
    store.sites.describe("stall-9", "market_stall", None, 0)
    register(store, "kitchen-1", "canteen-001", district="xianan")
    store.sites.add_supervisor("wang", "xianan")
    store.sites.add_supervisor("zhao", "xianan", role="inspector")
    store.sites.add_supervisor("qian", "chibi", role="inspector", firm="anjian")
    BrokerFiles(cloud.cfg.provisioning.broker_dir).set_passwords(PASSWORDS)
    cloud.start()
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    agent.start()
    try:
        yield City(cloud, agent, f"http://127.0.0.1:{port}", tmp_path)
    finally:
        agent.stop()
        cloud.stop()


def phone_photo(path: Path) -> Path:
    """A 12-megapixel photo as a phone takes it: far over what the collector keeps."""
    Image.effect_noise((4000, 3000), 60).convert("RGB").save(path, "JPEG", quality=95)
    assert path.stat().st_size > MAX_BYTES
    return path


def login(page: Any, base: str, name: str) -> None:
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("form button")


def test_a_patrol_with_a_failed_item_becomes_a_hazard_closed_from_the_box(
    city: City, browser: Any
) -> None:
    store, base = city.cloud.store, city.base
    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        # the supervisor gives the patrol out
        p = desk.new_page()
        p.goto(f"{base}/console/patrols")
        login(p, base, "wang")
        p.goto(f"{base}/console/patrols")
        p.select_option("#assign select[name=site]", "canteen-001")
        p.select_option("#assign select[name=inspector]", "zhao")
        p.click("#assign button")
        assert "Assigned: ok" in p.inner_text("#message")
        task = p.get_attribute("#patrols tr[data-id]", "data-id")
        # the inspector, on a phone
        m = phone.new_page()
        m.goto(f"{base}/patrol")
        assert m.url.endswith("/console/login")
        login(m, base, "zhao")
        m.wait_for_selector(f"a.task[data-id='{task}']").click()
        items = m.eval_on_selector_all("form.item", "fs => fs.map(f => f.dataset.item)")
        assert "pests" in items and len(items) >= 10
        for item in items:
            if item == "pests":
                continue
            m.check(f"#i-{item} input[value=pass]")
            m.click(f"#i-{item} button")
            m.wait_for_selector(f"#i-{item}.pass")
        m.check("#i-pests input[value=fail]")
        m.fill("#i-pests textarea[name=note]", "储藏间有鼠粪 droppings in the store room")
        m.set_input_files("#i-pests input[type=file]", str(phone_photo(city.tmp / "big.jpg")))
        m.wait_for_selector("#i-pests .thumbs img", timeout=30_000)
        photo = m.input_value("#i-pests input[name=photos]")
        assert photo
        ARTIFACTS.mkdir(exist_ok=True)
        m.screenshot(path=str(ARTIFACTS / "patrol-visit.png"), full_page=True)
        m.click("#i-pests button")
        m.wait_for_selector("#i-pests.fail")
        m.click("#finish button")
        m.wait_for_selector("[data-hazard]")
        assert "整改中" in m.inner_text("[data-hazard] .hazard-state")
        kept = store.evidence.get(photo)
        assert kept is not None and kept["device"] == "officer.zhao" and kept["size"] < MAX_BYTES
        with Image.open(kept["path"]) as shrunk:
            assert max(shrunk.size) == 1600  # shrunk on the phone, the shape kept
            assert shrunk.size[0] * 3 == shrunk.size[1] * 4
        hazard = m.get_attribute("[data-hazard]", "data-hazard")
        # the hazard reaches the box; the business rectifies it there, with a photo
        notice = wait_for(
            lambda: [n for n in city.agent.notices.list()
                     if n["id"] == hazard and n["state"] == "rectification_requested"],
            what="the hazard's notice on the box",
        )  # fmt: skip
        assert notice[0]["type"] == "hazard" and "鼠" in notice[0]["history"][-1]["note"]
        fixed = city.tmp / "fixed.jpg"
        Image.new("RGB", (320, 240), (200, 200, 190)).save(fixed, "JPEG")
        city.agent.notices.rectify(hazard, "已封堵鼠洞 hole sealed", fixed, city.tmp / "ev")
        wait_for(lambda: store.alerts.get(hazard)["state"] == "rectified", what="rectified")
        # the inspector verifies from the report, with a photo of the check
        m.reload()
        m.wait_for_selector("form[data-action=verify]")
        steps = store.alerts.get(hazard)["history"]
        box_photo = steps[-1]["photos"][0].rsplit("/", 1)[1]
        assert m.locator(f"[data-hazard] img[src$='{box_photo}']").count() == 1
        m.fill("form[data-action=verify] textarea[name=note]", "复查合格 checked")
        m.set_input_files("form[data-action=verify] input[type=file]", str(fixed))
        m.wait_for_selector("form[data-action=verify] .thumbs img")
        m.click("form[data-action=verify] button")
        m.wait_for_selector("#message.ok")
        assert "已闭环" in m.inner_text("[data-hazard] .hazard-state")
        m.screenshot(path=str(ARTIFACTS / "patrol-report.png"), full_page=True)
        closed = store.alerts.get(hazard)
        assert closed["state"] == "closed" and closed["history"][-1]["actor"] == "inspector:zhao"
        assert len(closed["history"][-1]["photos"]) == 1
        wait_for(lambda: [n for n in city.agent.notices.list()
                          if n["id"] == hazard and n["state"] == "closed"],
                 what="the box told it is closed")  # fmt: skip
        # the district's supervisor reads the same report
        p.goto(f"{base}/console/patrol/{task}/report")
        assert "已闭环" in p.inner_text("[data-hazard] .hazard-state")
    finally:
        desk.close()
        phone.close()
    actions = {r["action"] for r in city.cloud.store.db.query("SELECT action FROM audit")}
    assert {"patrol_assigned", "patrol_pass", "patrol_fail", "patrol_finished", "photo",
            "verify"} <= actions  # fmt: skip


def test_who_may_open_what_and_what_a_photo_must_be(city: City) -> None:
    wang, zhao, qian = city.login("wang"), city.login("zhao"), city.login("qian")
    assert _assign(wang, due="2099-01-01")[0] == 409  # a century ahead: refused, with why
    status, body = _assign(wang)
    assert status == 200, body[:500]
    task = city.cloud.store.db.query("SELECT id FROM patrol_tasks")[0]["id"]
    assert _assign(wang, site="stall-9", inspector="", firm="anjian")[0] == 409  # not xianan
    assert zhao.request(f"/console/patrol/{task}")[0] == 200
    assert qian.request(f"/console/patrol/{task}")[0] == 404  # not theirs, nor their firm's
    assert qian.request(f"/console/patrol/{task}/report")[0] == 404
    status, body = zhao.request("/console")
    assert status == 200 and "我的巡查" in body  # redirected to their patrols
    for path in ("/console/patrols", "/console/figures", "/console/centre", "/console/export.csv"):
        assert zhao.request(path)[0] == 403, path
    alert_form = {"action": "ack", "csrf": zhao.csrf}
    assert zhao.request("/console/alerts/x", alert_form)[0] == 403
    assert zhao.request(f"/console/patrol/{task}/finish", {"csrf": "forged"})[0] == 403

    def upload(client: Client, body: bytes, token: str | None = None) -> int:
        headers = {"Content-Type": "image/jpeg", "X-CSRF-Token": token or client.csrf}
        req = urllib.request.Request(f"{city.base}/console/photos", data=body, headers=headers)
        try:
            with client.opener.open(req, timeout=10) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    small = io.BytesIO()
    Image.new("RGB", (64, 48), (1, 2, 3)).save(small, "JPEG")
    assert upload(zhao, small.getvalue()) == 201
    assert upload(zhao, small.getvalue(), token="forged") == 403
    assert upload(zhao, b"<svg onload=alert(1)>") == 400
    assert upload(zhao, small.getvalue()[:200]) == 400  # cut short: does not decode
    assert upload(zhao, b"\xff\xd8\xff" + b"\0" * (MAX_BYTES + 1)) == 413
    huge = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(huge, "JPEG", quality=10)
    assert upload(zhao, huge.getvalue()) == 400  # too many pixels: the phone shrinks first
    # one officer's photo cannot be named by another
    theirs = json.loads(_raw_upload(city, qian, small.getvalue()))["id"]
    status, body = zhao.request(f"/console/patrol/{task}/items/pests", {
        "result": "fail", "note": "x", "photos": theirs, "csrf": zhao.csrf})  # fmt: skip
    assert status == 409 and "not one of yours" in body


def _tomorrow() -> str:
    import time
    from datetime import datetime, timedelta, timezone

    return datetime.fromtimestamp(time.time() + 86400, timezone(timedelta(hours=8))).strftime(
        "%Y-%m-%d"
    )


def _raw_upload(city: City, client: Client, body: bytes) -> str:
    req = urllib.request.Request(f"{city.base}/console/photos", data=body,
                                 headers={"X-CSRF-Token": client.csrf})  # fmt: skip
    with client.opener.open(req, timeout=10) as r:
        return str(r.read().decode())


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    path=st.sampled_from(["items/pests", "items/%2e%2e", "finish", "hazards/x", "items/"]),
    form=st.dictionaries(
        st.sampled_from(["result", "note", "photos", "due_h", "action", "csrf"]),
        st.text(max_size=300) | st.sampled_from(["pass", "fail", "verify", "nan", "1e309"]),
        max_size=6,
    ),
)
def test_any_patrol_form_gets_an_answer_not_a_crash(
    city: City, path: str, form: dict[str, str]
) -> None:
    zhao = city.login("zhao")
    task = _a_task(city)
    form = {**form, "csrf": zhao.csrf} if "csrf" not in form else form
    status, _ = zhao.request(f"/console/patrol/{task}/{path}", form)
    assert status < 500, (path, form)


def _a_task(city: City) -> str:
    """The patrol the fuzzing works on (given out once)."""
    rows = city.cloud.store.db.query("SELECT id FROM patrol_tasks")
    if rows:
        return str(rows[0]["id"])
    status, body = _assign(city.login("wang"))
    assert status == 200, body[:300]
    return _a_task(city)


def _assign(client: Client, **form: str) -> tuple[int, str]:
    """Give a patrol out through the board's form (canteen-001 to zhao, due tomorrow)."""
    base = {"site": "canteen-001", "inspector": "zhao", "due": _tomorrow()}
    return client.request("/console/patrols", {**base, **form, "csrf": client.csrf})
