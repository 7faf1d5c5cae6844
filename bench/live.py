"""Live views benchmark, in one run (docs/benchmarks.md):

(a) the box's cost of one live view: the kitchen agent runs as its own process, one camera
    (the stand-in H.264 camera, 640x360 at 25 fps) read at 5 fps as the kitchen does; its CPU
    (with its children) and its upload are measured for --seconds with nobody watching, then
    with 1 viewer, then with 50 (viewers are HLS clients fetching the playlist and every new
    segment through the media server, as hls.js does); the box's upload is what the media
    server received from it (nginx-rtmp's own count);
(b) for scale, in the same run: what re-encoding the same stream would cost the box (FFmpeg
    decoding it and encoding 640x360 H.264), against the copy it does;
(c) the time from a tap to the first frame in Debian's headless Chromium, cold (the box not
    sending: it is asked, connects, publishes, the first segment is cut) and warm (another
    viewer already watching). Medians.

    python bench/live.py --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud.live import nginx  # noqa: E402
from cloud.service import CloudService  # noqa: E402
from cloud.webassets import HLS, install  # noqa: E402
from edge.live import testcam  # noqa: E402
from shared.browser import CHROMIUM_ARGS, chromium  # noqa: E402
from tests.conftest import cloud_config, register, spawn, wait_for, write_toml  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402

SITE, DEVICE = "canteen-001", "kitchen-1"
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """CPU seconds of a process and its living children (FFmpeg, when it copies)."""
    total = 0.0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out + [g for c in out for g in children(c)]


def bytes_in(media: nginx.MediaServer) -> int:
    """What the media server received from boxes (nginx-rtmp's stat)."""
    with urllib.request.urlopen(f"{media.http_url}/media-stat", timeout=5) as r:
        xml = r.read().decode()
    m = re.search(r"<application>\s*<name>live</name>.*?</application>", xml, re.S)
    return sum(int(b) for b in re.findall(r"<bytes_in>(\d+)</bytes_in>", m.group(0) if m else ""))


class Viewer(threading.Thread):
    """An HLS client: the playlist every second, each new segment once."""

    def __init__(self, base: str, play: str) -> None:
        super().__init__(daemon=True)
        self.base, self.play, self.received, self.stop = base, play, 0, threading.Event()

    def run(self) -> None:
        seen: set[str] = set()
        folder = self.play.rsplit("/", 1)[0]
        while not self.stop.wait(1.0):
            try:
                with urllib.request.urlopen(self.base + self.play, timeout=5) as r:
                    playlist = r.read().decode()
                for seg in re.findall(r"^[^#\s].*\.ts$", playlist, re.M):
                    if seg not in seen:
                        seen.add(seg)
                        with urllib.request.urlopen(f"{self.base}{folder}/{seg}", timeout=5) as r:
                            self.received += len(r.read())
            except OSError:
                continue


def watch(base: str) -> dict[str, Any]:
    req = urllib.request.Request(f"{base}/k/{SITE}/live/1", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        answer: dict[str, Any] = json.loads(r.read())
    token = answer["token"]
    while answer["state"] == "starting":
        time.sleep(0.3)
        with urllib.request.urlopen(f"{base}/live/{token}", timeout=10) as r:
            answer = json.loads(r.read())
    assert answer["state"] == "live", answer
    return answer


def phase(box: int, media: nginx.MediaServer, seconds: float, viewers: int) -> dict[str, float]:
    base = media.http_url
    crowd = [Viewer(base, watch(base)["play"]) for _ in range(viewers)]
    for v in crowd:
        v.start()
    if viewers:  # the stream has begun: measure from its steady state
        wait_for(lambda: all(v.received for v in crowd), 30, "every viewer's first segment")
    c0, b0, t0 = cpu_s(box), bytes_in(media), time.monotonic()
    time.sleep(seconds)
    c1, b1, t1 = cpu_s(box), bytes_in(media), time.monotonic()
    for v in crowd:
        v.stop.set()
    for v in crowd:
        v.join(10)
    return {
        "viewers": viewers,
        "box_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 2),
        "box_upload_kbps": round(8 * (b1 - b0) / (t1 - t0) / 1000, 1),
    }


def reencode_cost(camera: testcam.TestCamera, seconds: float) -> float:
    """CPU per cent of one core for FFmpeg decoding the camera and encoding 640x360 H.264."""
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i",
           camera.url, "-an", "-c:v", "libx264", "-preset", "veryfast", "-s", "640x360",
           "-t", str(seconds + 3), "-f", "null", "-"]  # fmt: skip
    p = subprocess.Popen(cmd)
    time.sleep(3)
    c0, t0 = cpu_s(p.pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_s(p.pid), time.monotonic()
    p.wait()
    return round(100 * (c1 - c0) / (t1 - t0), 2)


def idle(cloud: CloudService) -> None:
    """Wait until the box sends nothing (the last viewer's linger has passed)."""
    assert cloud.live is not None
    wait_for(lambda: not cloud.live.sessions.sessions, 60, "the box to stop")  # type: ignore[union-attr]


def first_frames(cloud: CloudService, media: nginx.MediaServer, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    exe = chromium()
    if exe is None:
        return {"skipped": "no chromium"}
    cold: list[int] = []
    warm: list[int] = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)

        def tap() -> int:
            page = b.new_page(viewport={"width": 390, "height": 844})
            page.goto(f"{media.http_url}/k/{SITE}")
            page.locator(".view .watch").first.click()
            page.wait_for_selector(".view[data-first-frame-ms]", timeout=60_000)
            ms = int(page.locator(".view").first.get_attribute("data-first-frame-ms") or 0)
            page.close()
            return ms

        for _ in range(runs):
            idle(cloud)
            cold.append(tap())
        keep = Viewer(media.http_url, watch(media.http_url)["play"])
        keep.start()
        for _ in range(runs):
            warm.append(tap())
        keep.stop.set()
        b.close()
    return {
        "cold_ms": cold,
        "cold_median_ms": statistics.median(cold),
        "warm_ms": warm,
        "warm_median_ms": statistics.median(warm),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="each phase")
    ap.add_argument("--taps", type=int, default=5, help="first-frame runs, cold and warm")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    for why in (testcam.available(), nginx.available()):
        if why:
            sys.exit(why)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = run(work, args.seconds, args.taps)
    results["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    )
    results["command"] = "python bench/live.py " + " ".join(sys.argv[1:])
    print(json.dumps(results, indent=2) if args.json else results)


def run(work: Path, seconds: float, taps: int) -> dict[str, Any]:
    assets = ROOT / ".cache" / "web-assets"
    install(assets, [HLS])
    camera = testcam.TestCamera()
    camera.start()
    broker = Mosquitto(work / "mosquitto").start()
    web_port = nginx.free_port()
    (work / "media").mkdir()
    media = nginx.MediaServer(work / "media", f"127.0.0.1:{web_port}")
    media.start()
    cfg = cloud_config(work, broker.url, web_port)
    cfg.web.assets_dir = assets
    cfg.live = cfg.live.model_validate({"rtmp_url": media.rtmp_url,
                                        "viewer_timeout_s": 3, "linger_s": 0,
                                        "max_viewers_per_site": 60,
                                        "max_views_per_address": 60})  # fmt: skip  # all local
    cloud = CloudService(cfg)
    register(cloud.store, DEVICE, SITE)
    cloud.store.sites.set(SITE, "xianan", "bench canteen")
    cloud.start()
    conf = write_toml(work / "edge.toml", {"device": DEVICE, "site": SITE,
                      "data_dir": str(work / "box"), "mqtt": {"url": broker.url},
                      "display": {"port": 0}})  # fmt: skip
    with conf.open("a") as f:
        f.write(f'\n[[kitchen.cameras]]\nname = "hot"\nsource = "{camera.url}"\n'
                f'live_source = "{camera.url}"\npublic = true\nfps = 5\n'
                "tamper = false\n")  # fmt: skip
    box = spawn("edge.cli", "run", "--config", str(conf), log=work / "box.log")
    try:
        wait_for(lambda: cloud.store.db.query("SELECT 1 FROM events WHERE kind = 'live_offer'"),
                 60, "the box's offer")  # fmt: skip
        time.sleep(3)  # the box's camera reader at its steady state
        phases = [phase(box.pid, media, seconds, n) for n in (0, 1)]
        idle(cloud)
        phases.append(phase(box.pid, media, seconds, 50))
        idle(cloud)
        copy = phases[1]["box_cpu_pct"] - phases[0]["box_cpu_pct"]
        reencode = reencode_cost(camera, seconds)
        frames = first_frames(cloud, media, taps)
    finally:
        box.terminate()
        box.wait(20)
        cloud.stop()
        media.stop()
        broker.stop()
        camera.stop()
    one, fifty = phases[1], phases[2]
    return {
        "phases": phases,
        "ratio_50_to_1_viewers": {
            "box_cpu": round(fifty["box_cpu_pct"] / one["box_cpu_pct"], 2),
            "box_upload": round(fifty["box_upload_kbps"] / one["box_upload_kbps"], 2),
        },
        "streaming_cost_cpu_pct": round(copy, 2),
        "reencode_cpu_pct": reencode,
        "copy_to_reencode": round(copy / reencode, 3) if reencode else None,
        "tap_to_first_frame": frames,
    }


if __name__ == "__main__":
    main()
