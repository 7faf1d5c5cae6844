"""Live views of a public kitchen, for real: a stand-in H.264 camera (GStreamer's RTSP
server), a box agent that copies it with FFmpeg on demand, Mosquitto, the collector, nginx
with its RTMP module making HLS, and Debian's Chromium at a phone's size playing it with
hls.js. The box starts on the first viewer and stops after the last; a camera outside its
hours or switched off by the regulator shows its notice; nothing private reaches the page."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_main
from cloud.live import nginx
from cloud.service import CloudService
from cloud.webassets import install
from edge.agent import Agent
from edge.live import testcam
from shared.fetch import FetchError
from tests.conftest import ARTIFACTS, ROOT, cloud_config, edge_config, running_cloud, wait_for

pytestmark = pytest.mark.real
SITE, DEVICE = "canteen-001", "kitchen-1"
ASSETS = ROOT / ".cache" / "web-assets"


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    try:
        install(ASSETS)
    except (FetchError, OSError) as exc:
        pytest.skip(f"the browser libraries cannot be fetched from npm: {exc}")
    return ASSETS


@pytest.fixture(scope="module")
def camera() -> Iterator[testcam.TestCamera]:
    why = testcam.available() or nginx.available()
    if why:
        pytest.skip(f"{why}; `make test` installs it")
    cam = testcam.TestCamera()
    cam.start()
    yield cam
    cam.stop()


def _closed_hours() -> list[dict[str, Any]]:
    """Public hours that exclude now (China time): an hour that ended two hours ago."""
    now = datetime.now(UTC) + timedelta(hours=8)
    start = (now - timedelta(hours=3)).strftime("%H:%M")
    end = (now - timedelta(hours=2)).strftime("%H:%M")
    return [{"start": start, "end": end}]


@dataclass
class Rig:
    cloud: CloudService
    agent: Agent
    media: nginx.MediaServer
    config: Path

    @property
    def url(self) -> str:
        return f"{self.media.http_url}/k/{SITE}"

    def live_events(self) -> list[dict[str, Any]]:
        return [
            json.loads(r["data"])
            for r in self.cloud.store.db.query(
                "SELECT data FROM events WHERE kind = 'live' ORDER BY seq"
            )
        ]


@pytest.fixture
def rig(
    tmp_path: Path, mosquitto: Any, camera: testcam.TestCamera, assets_dir: Path
) -> Iterator[Rig]:
    web_port = nginx.free_port()
    media = nginx.MediaServer(tmp_path / "media", f"127.0.0.1:{web_port}")
    cfg = cloud_config(tmp_path, mosquitto.url, web_port)
    cfg.web.assets_dir = assets_dir
    cfg.live = cfg.live.model_validate(
        {
            "rtmp_url": media.rtmp_url,
            "viewer_timeout_s": 3,
            "linger_s": 1,
            "lease_s": 9,
            "start_timeout_s": 15,
        }
    )
    conf = tmp_path / "cloud.toml"
    conf.write_text(f'data_dir = "{tmp_path}"\n[store]\npath = "{cfg.store.path}"\n')
    (tmp_path / "media").mkdir()
    media.start()
    cams = [
        {"name": "hot", "source": camera.url, "live_source": camera.url, "public": True,
         "public_label": "热菜间", "fps": 2, "tamper": False},
        {"name": "cold", "source": camera.url, "public": True, "fps": 2, "tamper": False},
        {"name": "wash", "source": camera.url, "public": True, "fps": 2, "tamper": False,
         "public_hours": _closed_hours()},
        {"name": "office", "source": camera.url, "fps": 1, "tamper": False},
    ]  # fmt: skip
    with running_cloud(cfg, DEVICE, SITE) as cloud:
        cloud.store.sites.set(SITE, "xianan", "实验外国语学校食堂")
        agent = Agent(edge_config(tmp_path, mosquitto.url, kitchen={"cameras": cams}))
        agent.start()
        try:
            rig = Rig(cloud, agent, media, conf)
            wait_for(
                lambda: (
                    cloud.store.db.query(
                        "SELECT 1 FROM devices WHERE device = ? AND state = 'online'", (DEVICE,)
                    )
                    and cloud.store.db.query("SELECT 1 FROM events WHERE kind = 'live_offer'")
                ),
                20,
                "the box online and its offer stored",
            )
            yield rig
        finally:
            agent.stop()
            media.stop()


def _post(url: str) -> dict[str, Any]:
    req = urllib.request.Request(url, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


def test_a_view_plays_on_a_phone_and_the_box_stops_after_the_last_viewer(
    rig: Rig, browser: Any
) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    try:
        page.goto(rig.url)
        views = page.locator(".view")
        assert views.count() == 3  # the office camera is not public
        assert "热菜间" in views.nth(0).inner_text()
        assert "现在不是公开时段" in views.nth(2).inner_text()  # outside its public hours
        assert rig.agent.live is not None and not rig.agent.live.streams  # nobody watches yet
        views.nth(0).locator(".watch").click()
        page.wait_for_selector(".view[data-first-frame-ms]", timeout=30_000)
        first_ms = int(views.nth(0).get_attribute("data-first-frame-ms") or 0)
        t0 = page.evaluate("document.querySelector('video').currentTime")
        page.wait_for_function(
            f"document.querySelector('video').currentTime > {t0} + 1.5", timeout=20_000
        )
        started = wait_for(
            lambda: [e for e in rig.live_events() if e["state"] == "started"],
            what="the box's live event",
        )
        assert [(e["camera"], e["mode"]) for e in started] == [("hot", "copy")]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-view.png"), full_page=True)
        assert 0 < first_ms < 30_000
    finally:
        page.close()
    stopped = wait_for(
        lambda: [e for e in rig.live_events() if e["state"] == "stopped"], 30, "the box to stop"
    )
    assert stopped[0]["camera"] == "hot" and stopped[0]["sent_bytes"] > 10_000
    assert rig.agent.live is not None and not rig.agent.live.streams


def test_a_camera_without_h264_falls_back_to_jpeg_frames(rig: Rig, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(rig.url)
        page.locator(".view").nth(1).locator(".watch").click()
        page.wait_for_function(
            "(() => { const i = document.querySelector('.view img');"
            " return i && i.complete && i.naturalWidth > 0; })()",
            timeout=30_000,
        )
        started = wait_for(  # the box's live event comes by its outbox: it may follow a frame
            lambda: [e for e in rig.live_events() if e["state"] == "started"],
            what="the box's live event",
        )
        assert [(e["camera"], e["mode"]) for e in started] == [("cold", "jpeg")]
        page.screenshot(path=str(ARTIFACTS / "live-view-jpeg.png"))
    finally:
        page.close()
    wait_for(lambda: not rig.agent.live or not rig.agent.live.streams, 30, "the box to stop")


def test_the_regulator_switch_takes_the_views_off_at_once(rig: Rig, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.goto(rig.url)
        page.locator(".view").nth(0).locator(".watch").click()
        page.wait_for_selector(".view[data-first-frame-ms]", timeout=30_000)
        r = CliRunner().invoke(cloud_main, ["live", "off", SITE, "--config", str(rig.config)])
        assert r.exit_code == 0, r.output
        page.wait_for_function(
            "document.querySelector('.view').innerText.includes('监管部门已暂停')", timeout=15_000
        )
        page.screenshot(path=str(ARTIFACTS / "live-view-off.png"))
        wait_for(lambda: rig.agent.live is not None and not rig.agent.live.streams, 15, "stop")
        page.reload()
        assert page.locator(".view .watch").count() == 0  # every view shows the notice
        assert "The regulator has paused" in page.inner_text("#live")
    finally:
        page.close()
    CliRunner().invoke(cloud_main, ["live", "on", SITE, "--config", str(rig.config)])


def test_the_cap_on_viewers_and_no_private_field(rig: Rig) -> None:
    r = CliRunner().invoke(cloud_main, ["live", "cap", SITE, "2", "--config", str(rig.config)])
    assert r.exit_code == 0, r.output
    base = f"{rig.media.http_url}/k/{SITE}/live"
    answers = [_post(f"{base}/1"), _post(f"{base}/1"), _post(f"{base}/2")]
    assert [a["state"] for a in answers[:2]] == ["starting", "starting"]
    assert answers[2] == {"state": "notice", "notice": "full", **_notice("full")}
    live = wait_for(
        lambda: (
            (a := _get(f"{rig.media.http_url}/live/{answers[0]['token']}"))["state"] == "live" and a
        ),
        30,
        "the stream to begin",
    )
    playlist = wait_for(  # the media server writes it after the first segment
        lambda: _text(f"{rig.media.http_url}{live['play']}"), 15, "the playlist"
    )
    assert "#EXTM3U" in playlist
    other = live["play"].replace(live["token"], "0" * 32)
    assert _text(f"{rig.media.http_url}{other}") == ""  # refused: not a viewer's token
    with urllib.request.urlopen(rig.url, timeout=10) as resp:
        html = resp.read().decode()
    rtmp = rig.cloud.cfg.live.rtmp_url
    for body in (html, json.dumps(answers), json.dumps(live), playlist):
        for private in (DEVICE, "hot", "cold", "office", rtmp, "127.0.0.1:", "rtsp", "k="):
            assert private not in body, f"{private!r} leaked"


def _text(url: str) -> str:
    """The body, or "" for a 4xx (not found yet, or refused)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return str(r.read().decode())
    except urllib.error.HTTPError as exc:
        assert exc.code < 500, exc
        return ""


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        doc: dict[str, Any] = json.loads(r.read())
    return doc


def _notice(key: str) -> dict[str, str]:
    from cloud.live.sessions import NOTICES

    zh, en = NOTICES[key]
    return {"zh": zh, "en": en}


def test_the_operators_nginx_config_is_one_nginx_accepts(tmp_path: Path) -> None:
    why = nginx.available()
    if why:
        pytest.skip(f"{why}; `make test` installs it")
    conf = tmp_path / "cloud.toml"
    conf.write_text(f'data_dir = "{tmp_path}"\n[web]\nport = 8080\n')
    run, hls = tmp_path / "run", tmp_path / "hls"
    run.mkdir()
    args = ["live", "nginx-config", "--rtmp", f"127.0.0.1:{nginx.free_port()}", "--http",
            f"127.0.0.1:{nginx.free_port()}", "--hls-dir", str(hls), "--run-dir", str(run),
            "--config", str(conf)]  # fmt: skip
    r = CliRunner().invoke(cloud_main, args)
    assert r.exit_code == 0, r.output
    assert "proxy_pass http://127.0.0.1:8080/live/auth;" in r.output
    (tmp_path / "media.conf").write_text(r.output)
    import shutil
    import subprocess

    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    check = [exe, "-t", "-c", str(tmp_path / "media.conf"), "-p", f"{run}/", "-e", str(run / "e")]
    got = subprocess.run(check, capture_output=True, text=True)
    assert got.returncode == 0, got.stderr
    assert "test is successful" in got.stderr


def test_the_centre_wall_shows_a_kitchen_live(rig: Rig, browser: Any) -> None:
    from cloud.broker_files import BrokerFiles

    cfg = rig.cloud.cfg
    BrokerFiles(cfg.provisioning.broker_dir).set_passwords({"chen": "chen-pw-1"})
    rig.cloud.store.sites.add_supervisor("chen", "city", role="leader")
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"{rig.media.http_url}/console/login")  # through the media server, as deployed
        page.fill("input[name=name]", "chen")
        page.fill("input[name=password]", "chen-pw-1")
        page.click("form button")
        page.goto(f"{rig.media.http_url}/centre")
        page.wait_for_selector("#screen video", timeout=30_000)
        page.wait_for_function(
            "(() => { const v = document.querySelector('#screen video');"
            " return v && v.currentTime > 1; })()",
            timeout=30_000,
        )
        assert page.inner_text("#screen-site") == SITE
        page.screenshot(path=str(ARTIFACTS / "centre-wall-live.png"))
    finally:
        page.close()
    wait_for(lambda: rig.agent.live is not None and not rig.agent.live.streams, 30, "stop")


def test_a_view_plays_again_after_the_box_has_stopped(rig: Rig, browser: Any) -> None:
    """A kitchen watched, left, and watched again: the box sends each time."""
    for turn in range(2):
        page = browser.new_page(viewport={"width": 390, "height": 844})
        try:
            page.goto(rig.url)
            page.locator(".view").nth(0).locator(".watch").click()
            page.wait_for_function(
                "(document.querySelector('video') || {}).currentTime > 1", timeout=30_000
            )
        finally:
            page.close()
        wait_for(
            lambda n=turn: len([e for e in rig.live_events() if e["state"] == "stopped"]) > n,
            30,
            "the box to stop",
        )  # and the next viewer starts it again
