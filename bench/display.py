"""Display benchmark, in one run:

(a) the CPU cost of serving the nine-view hall wall to one browser: the kitchen agent (nine
    640x360 cameras at 5 fps from videos made from the test photos) runs in this process; its
    CPU is measured for --seconds with no viewer, then with Debian's headless Chromium showing
    /hall; the difference is the cost of serving the wall;
(b) scale frame to screen: a scale on a pseudo-terminal sends a new weight every frame (20 Hz)
    to the stall agent; the stall screen in Chromium logs when each weight is shown; latency =
    shown (Date.now) - written to the pty (time.time). p50 and p99 (goal p99 <= 200 ms).

    python bench/display.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import resource
import statistics
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edge.agent import Agent  # noqa: E402
from edge.vision.scenes import empty_scene, intruder_scene, write_video  # noqa: E402
from shared.browser import CHROMIUM_ARGS, chromium  # noqa: E402
from shared.catalog import parse_csv  # noqa: E402
from shared.signing import new_key, write_key  # noqa: E402
from tests.conftest import edge_config  # noqa: E402
from tests.support.mosquitto import free_port  # noqa: E402

TESTDATA = ROOT.parent / "shared" / "testdata"
MODELS, IMAGES = TESTDATA / "models", TESTDATA / "images"


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def wall_cost(work: Path, browser: Any, seconds: float) -> dict[str, float]:
    cat = write_video(
        work / "cat.avi",
        intruder_scene(IMAGES / "hot_dog.jpg", IMAGES / "cat_720p.jpg", (140, 100, 910, 720)),
    )
    still = write_video(work / "still.avi", empty_scene(IMAGES / "hot_dog.jpg"))
    port = free_port()
    agent = Agent(
        edge_config(
            work,
            "mqtt://127.0.0.1:9",
            kitchen={
                "model": "ssd_oidv4",
                "models_dir": str(MODELS),
                "cameras": [
                    {"name": f"cam{i}", "source": str(cat if i < 3 else still)}
                    for i in range(1, 10)
                ],
                "rules": [{"violation": "animal_in_kitchen", "labels": ["Cat"]}],
            },
            display={"port": port},
        )
    )
    agent.start()
    try:
        time.sleep(3)  # warm-up (not measured)
        c0, t0 = cpu(), time.perf_counter()
        time.sleep(seconds)
        alone = (cpu() - c0) / (time.perf_counter() - t0)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"http://127.0.0.1:{port}/hall")
        time.sleep(3)  # the wall fills (not measured)
        sent = agent.web.config.app.state.frames_sent  # type: ignore[union-attr]
        f0 = sum(sent.values())
        c0, t0 = cpu(), time.perf_counter()
        time.sleep(seconds)
        elapsed = time.perf_counter() - t0
        viewed = (cpu() - c0) / elapsed
        frames = (sum(sent.values()) - f0) / elapsed
        page.close()
    finally:
        agent.stop()
    return {
        "agent_cores_no_viewer": alone,
        "agent_cores_with_wall": viewed,
        "serve_wall_cores": viewed - alone,
        "wall_frames_per_s": frames,
    }


def weight_latency(work: Path, browser: Any, seconds: float) -> dict[str, float]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    link = work / "ttyScale"
    link.symlink_to(os.ttyname(slave))
    write_key(work / "ticket.key", new_key())
    port = free_port()
    agent = Agent(
        edge_config(
            work,
            "mqtt://127.0.0.1:9",
            device="stall-1",
            stall={
                "market": "M",
                "stall_no": "1",
                "retailer": "R",
                "ticket_base_url": "https://t",
                "ticket_key_file": str(work / "ticket.key"),
                "scale": {"port": str(link), "profile": "ad_st_gs"},
            },
            display={"port": port},
        )
    )
    assert agent.stall is not None
    agent.stall.catalog.replace(
        parse_csv("plu,name,unit,unit_price,origin,batch\n101,白菜,kg,3.80,湖北,B1\n"), "v"
    )
    agent.start()
    written: dict[float, float] = {}
    stop = threading.Event()

    def feed() -> None:
        i = 0
        while not stop.is_set():
            grams = 1000.0 + 10 * (i % 500)  # a new weight in every frame
            frame = f"US,GS,+{grams / 1000:07.2f}kg\r\n".encode()
            written[grams] = time.time() * 1000
            os.write(master, frame)
            i += 1
            stop.wait(0.05)

    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/stall")
        page.wait_for_function("typeof window.weightLog !== 'undefined'")
        threading.Thread(target=feed, daemon=True).start()
        time.sleep(seconds)  # the measurement window
        log = page.evaluate("window.weightLog")
    finally:
        stop.set()
        page.close()
        agent.stop()
        os.close(master)
    lat = sorted(e["shown"] - written[e["grams"]] for e in log if e["grams"] in written)
    return {
        "weights_shown": len(lat),
        "screen_p50_ms": lat[len(lat) // 2],
        "screen_p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium() or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                r = wall_cost(Path(tmp) / "hall", browser, args.seconds)
                r.update(weight_latency(Path(tmp), browser, args.seconds))
            runs.append(r)
        browser.close()
    keys = list(runs[0])
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    out["runs"] = [{k: round(v, 3) for k, v in r.items()} for r in runs]
    out["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
