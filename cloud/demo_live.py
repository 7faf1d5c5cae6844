"""The demo's open kitchen (明厨亮灶): a stand-in H.264 camera in the canteen, nginx with its
RTMP module as the media server, and a phone (Debian's headless Chromium) that opens the
canteen's public page, taps the live view and watches; the box sends the camera only while
it is watched, and stops after the viewer leaves."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.demo_setup import KITCHEN, SITES, DemoSetup

if TYPE_CHECKING:
    from cloud.live.nginx import MediaServer
    from cloud.store import Store
    from edge.live.testcam import TestCamera

Say = Callable[[str], None]
Wait = Callable[[Callable[[], Any], float, str], Any]


class LiveKitchen:
    def __init__(self, workdir: Path, web_port: int, say: Say) -> None:
        self.w, self.web_port, self.say = workdir, web_port, say
        self.camera: TestCamera | None = None
        self.media: MediaServer | None = None
        self.result = ""

    def start(self) -> str:
        """Start the camera and the media server; the ``[live]`` section for the collector's
        config ("" when they cannot run here, said why)."""
        from cloud.live import nginx
        from cloud.webassets import install
        from edge.live import testcam
        from shared.fetch import FetchError

        why = testcam.available() or nginx.available()
        if why is None:
            try:
                install(DemoSetup(self.w).assets_dir)
            except (FetchError, OSError) as exc:
                why = f"the browser libraries cannot be fetched from npm: {exc}"
        if why is not None:
            self.say(f"no live views in this demo: {why}")
            return ""
        self.camera = testcam.TestCamera()
        self.camera.start()
        (self.w / "media").mkdir()
        self.media = nginx.MediaServer(self.w / "media", f"127.0.0.1:{self.web_port}")
        self.media.start()
        self.say(
            f"media server (nginx + RTMP module): boxes push to {self.media.rtmp_url}, viewers "
            f"watch through {self.media.http_url}; a stand-in H.264 camera at {self.camera.url}"
        )
        return f'\n[live]\nrtmp_url = "{self.media.rtmp_url}"\nviewer_timeout_s = 3\nlinger_s = 2\n'

    def camera_config(self) -> str:
        """The kitchen box's public camera (its config's ``[[kitchen.cameras]]``)."""
        if self.camera is None:
            return ""
        return (
            '[[kitchen.cameras]]\nname = "hotline"\n'
            f'source = "{self.camera.url}"\nlive_source = "{self.camera.url}"\n'
            'public = true\npublic_label = "热菜间 Hot kitchen"\nfps = 2\ntamper = false\n\n'
        )

    def story(self, store: Store, wait: Wait) -> None:
        """A parent opens the canteen's page on a phone, taps the live view, watches, leaves."""
        if self.media is None:
            return
        url = f"{self.media.http_url}/k/{SITES[KITCHEN]}"
        self.say(f"a parent opens the canteen's page on a phone: {url}")
        wait(lambda: _offered(store), 60, "the kitchen's offer of its public camera")
        if not _sent(store, "stopped") and not _sent(store, "started"):
            self.say("  nobody watches yet: the kitchen box sends no video")
        watched = self._watch(url)
        started = wait(lambda: _sent(store, "started"), 30, "the box to start")
        self.say(f"  the box started copying its camera ({started[-1]['mode']}, no re-encoding)")
        left = time.monotonic()
        stopped = wait(lambda: _sent(store, "stopped"), 60, "the box to stop")
        after = time.monotonic() - left
        kb = stopped[-1]["sent_bytes"] // 1024
        self.say(f"  the viewer left; the box stopped {after:.0f} s later, having sent {kb} KB")
        self.result = f"{watched}; the box sent {kb} KB only while watched, then stopped"

    def _watch(self, url: str) -> str:
        """Chromium at a phone's size taps the first view and watches it for a few seconds
        (a screenshot in the demo's folder)."""
        from playwright.sync_api import sync_playwright

        from shared.browser import CHROMIUM_ARGS, chromium

        exe = chromium()
        if exe is None:
            raise RuntimeError("Chromium is not installed (make test installs it)")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(url)
            page.locator(".view .watch").first.click()
            page.wait_for_selector(".view[data-first-frame-ms]", timeout=60_000)
            ms = page.locator(".view").first.get_attribute("data-first-frame-ms")
            t0 = page.evaluate("document.querySelector('video').currentTime")
            page.wait_for_function(
                f"document.querySelector('video').currentTime > {t0} + 3", timeout=30_000
            )
            page.screenshot(path=str(self.w / "live-view.png"), full_page=True)
            browser.close()
        self.say(f"  it plays {ms} ms after the tap (screenshot: {self.w / 'live-view.png'})")
        return f"played in Chromium {ms} ms after the tap"

    def stop(self) -> None:
        if self.media is not None:
            self.media.stop()
        if self.camera is not None:
            self.camera.stop()


def _offered(store: Store) -> bool:
    return bool(store.db.query("SELECT 1 FROM events WHERE kind = 'live_offer'"))


def _sent(store: Store, state: str) -> list[dict[str, Any]]:
    import json

    rows = store.db.query("SELECT data FROM events WHERE kind = 'live' ORDER BY received")
    return [d for r in rows if (d := json.loads(r["data"]))["state"] == state]
