"""Kitchen benchmark, in one run, with the Open Images SSD (ssd_oidv4, 300x300):

(a) raw: the LiteRT interpreter's invoke rate on the model alone (a prepared tensor, the same
    threads as the pipeline);
(b) pipeline: Kitchen.look() on frames that always move (a cat walking), each look one
    motion region -> crop, resize, normalise, invoke, decode, NMS, rules; looks per second and
    the ratio to (a) (goal >= 0.8);
(c) nine cameras at 640x360 and 5 fps (video files made from the test photos: three with a cat
    walking in, six still), in a process of their own, for --seconds: CPU in cores, detection
    latency p50/p99, peak RSS (goal <= 300 MB);
(d) nine still cameras: CPU per camera, in % of one core (goal <= 5), capture included.

    python bench/vision.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TESTDATA = ROOT.parent / "shared" / "testdata"
MODELS, IMAGES = TESTDATA / "models", TESTDATA / "images"
CAT_BOX = (140, 100, 910, 720)


def raw_and_pipeline(n: int) -> dict[str, float]:
    import numpy as np

    from edge.config import KitchenSettings
    from edge.store.outbox import Outbox
    from edge.store.snapshots import SnapshotQueue
    from edge.vision.cameras import Frame
    from edge.vision.kitchen import Kitchen
    from edge.vision.scenes import intruder_scene

    with tempfile.TemporaryDirectory() as tmp:
        cfg = KitchenSettings.model_validate(
            {
                "model": "ssd_oidv4",
                "models_dir": str(MODELS),
                "detector_threads": 2,
                "cameras": [{"name": "cam1", "source": "unused"}],
                "rules": [{"violation": "animal_in_kitchen", "labels": ["Cat"], "cooldown_s": 1e9}],
            }
        )
        ob = Outbox(Path(tmp) / "o.db", "bench", "bench")
        k = Kitchen(cfg, Path(tmp), ob, ob.enqueue, SnapshotQueue(ob))
        frames = intruder_scene(
            IMAGES / "hot_dog.jpg", IMAGES / "cat_720p.jpg", CAT_BOX, seconds=6, enter_at=0
        )[:40]
        tensor = k.detector.prepare(frames[0][:300, :300])
        for _ in range(10):
            k.detector.invoke(tensor)
        # frames that always move: each look is one region of motion (the gate sees the
        # difference against its average, which lags behind the walking cat)
        gate_frames = [
            frames[i % 20] if (i // 20) % 2 == 0 else frames[19 - i % 20] for i in range(n)
        ]
        k.look("cam1", Frame(gate_frames[0], 0, 0))
        # raw and pipeline in alternating blocks, so that the machine's mood weighs on both
        raw_s = elapsed = 0.0
        inferences0 = k.counters["kitchen_inferences"]
        block = max(1, n // 10)
        for start in range(0, n, block):
            t = time.perf_counter()
            for _ in range(block):
                k.detector.invoke(tensor)
            raw_s += time.perf_counter() - t
            t = time.perf_counter()
            for i, f in enumerate(gate_frames[start : start + block], start):
                k.look("cam1", Frame(np.ascontiguousarray(f), time.monotonic(), i + 1))
            elapsed += time.perf_counter() - t
        raw = len(range(0, n, block)) * block / raw_s
        inferences = k.counters["kitchen_inferences"] - inferences0
        ob.close()
    return {
        "raw_invokes_per_s": raw,
        "pipeline_inferences_per_s": inferences / elapsed,
        "pipeline_looks_per_s": n / elapsed,
        "inferences_per_look": inferences / n,
    }


def cameras_run(videos: list[str], seconds: float) -> dict[str, float]:
    """Run a Kitchen on these videos in this process; CPU, latency, RSS."""
    from edge.config import KitchenSettings
    from edge.store.outbox import Outbox
    from edge.store.snapshots import SnapshotQueue
    from edge.vision.kitchen import Kitchen

    with tempfile.TemporaryDirectory() as tmp:
        cfg = KitchenSettings.model_validate(
            {
                "model": "ssd_oidv4",
                "models_dir": str(MODELS),
                "detector_threads": 2,
                "cameras": [
                    {"name": f"cam{i + 1}", "source": v, "fps": 5, "width": 640, "height": 360}
                    for i, v in enumerate(videos)
                ],
                "rules": [{"violation": "animal_in_kitchen", "labels": ["Cat", "Dog"]}],
            }
        )
        ob = Outbox(Path(tmp) / "o.db", "bench", "bench")
        k = Kitchen(cfg, Path(tmp), ob, ob.enqueue, SnapshotQueue(ob))
        k.start()
        time.sleep(3)  # warm-up: cameras open, motion averages settle (not measured)
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        looks0 = k.counters["kitchen_looks"]
        time.sleep(seconds)  # the measurement window
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        looks = k.counters["kitchen_looks"] - looks0
        k.stop()
        lat = sorted(k.latency_ms)
        ob.close()
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) / (t1 - t0)
    return {
        "cpu_cores": cpu,
        "looks_per_s": looks / (t1 - t0),
        "latency_p50_ms": lat[len(lat) // 2] if lat else 0.0,
        "latency_p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0.0,
        "rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries that over from the
    parent through fork and exec, so it would count the benchmark's own memory."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_subprocess(videos: list[str], seconds: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--cameras-run", json.dumps(videos), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--invokes", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cameras-run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cameras_run:
        print(json.dumps(cameras_run(json.loads(args.cameras_run), args.seconds)))
        return
    from edge.vision.scenes import empty_scene, intruder_scene, write_video

    with tempfile.TemporaryDirectory() as tmp:
        cat = str(
            write_video(
                Path(tmp) / "cat.avi",
                intruder_scene(IMAGES / "hot_dog.jpg", IMAGES / "cat_720p.jpg", CAT_BOX),
            )
        )
        still = str(write_video(Path(tmp) / "still.avi", empty_scene(IMAGES / "hot_dog.jpg")))
        runs = []
        for _ in range(args.runs):
            r: dict[str, Any] = raw_and_pipeline(args.invokes)
            r["ratio"] = r["pipeline_inferences_per_s"] / r["raw_invokes_per_s"]
            nine = in_subprocess([cat] * 3 + [still] * 6, args.seconds)
            r.update({f"nine_{k}": v for k, v in nine.items()})
            idle = in_subprocess([still] * 9, args.seconds)
            r["still_cpu_pct_per_camera"] = idle["cpu_cores"] * 100 / 9
            runs.append(r)
    keys = list(runs[0])
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    out["runs"] = [{k: round(v, 2) for k, v in r.items()} for r in runs]
    out["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
