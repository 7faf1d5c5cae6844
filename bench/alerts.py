"""Alert latency: from a violation event committed on the edge to the alert received by a
supervisor's subscriber, at a steady rate through one Mosquitto (started here on a free port).

The edge agent runs in this process (violations come from its own kitchen pipeline there); the
collector runs as `shian-cloud run`, a process of its own. Each violation names its own camera
so that it opens its own alert; latency = receive time at the subscriber - the event's time
(taken just before its outbox commit). Medians of --runs.

    python bench/alerts.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cloud.store import Store  # noqa: E402
from edge.agent import Agent  # noqa: E402
from shared.config import MqttSettings  # noqa: E402
from shared.mqtt import make_client, protocols  # noqa: E402
from tests.conftest import cloud_config, edge_config, register, write_toml  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402


def one_run(rate: float, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="shian-alerts-") as tmp:
        work = Path(tmp)
        broker = Mosquitto(work / "mosquitto").start()
        ccfg = cloud_config(work, broker.url)
        store = Store(ccfg.store.path)
        store.sites.set("canteen-001", "xianan")
        register(store, "kitchen-1", "canteen-001", district="xianan")
        store.close()
        conf = write_toml(
            work / "cloud.toml",
            ccfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
        )
        cloud = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud.cli",
                "run",
                "--config",
                str(conf),
                "--log-level",
                "WARNING",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        got: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        s = MqttSettings(url=broker.url)
        phone = make_client(s, "bench-phone", protocols(s)[0])
        phone.on_message = lambda _c, _u, m: got.put((time.time(), bytes(m.payload)))
        phone.connect(s.host, s.port)
        phone.loop_start()
        phone.subscribe("shian/v1/alerts/xianan/+", qos=1)
        agent = Agent(edge_config(work, broker.url))
        agent.start()
        try:
            while not Path(ccfg.store.path).exists():
                time.sleep(0.05)
            time.sleep(1.0)  # let the collector subscribe (not measured)
            n = int(rate * seconds)
            sent: dict[str, float] = {}
            start = time.monotonic()
            for i in range(n):
                wait = start + i / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                camera = f"cam{i}"
                agent.emit(
                    "violation",
                    {
                        "camera": camera,
                        "type": "animal_in_kitchen",
                        "label": "Cat",
                        "score": 0.8,
                        "box": [1, 2, 3, 4],
                        "frame": [640, 360],
                        "model": "ssd_oidv4",
                        "snapshot": None,
                    },
                )
                sent[camera] = 0.0
            for e in agent.outbox.recent(n + 10):
                if e["kind"] == "violation":
                    sent[e["data"]["camera"]] = e["created"]
            received: dict[str, float] = {}
            deadline = time.monotonic() + 30
            while len(received) < n and time.monotonic() < deadline:
                try:
                    t, payload = got.get(timeout=0.5)
                except queue.Empty:
                    continue
                msg = json.loads(payload)
                received.setdefault(msg["source"], t)
        finally:
            agent.stop()
            phone.disconnect()
            phone.loop_stop()
            cloud.send_signal(signal.SIGTERM)
            cloud.wait(30)
            broker.stop()
    lat = sorted((received[c] - sent[c]) * 1000 for c in received if sent.get(c))
    return {
        "events_sent": n,
        "alerts_received": len(received),
        "p50_ms": lat[len(lat) // 2] if lat else float("nan"),
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = [one_run(args.rate, args.seconds) for _ in range(args.runs)]
    out: dict[str, Any] = {
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 1),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 1),
        "alerts_received": min(r["alerts_received"] for r in runs),
        "events_sent": runs[0]["events_sent"],
        "rate_per_s": args.rate,
        "runs": [{k: round(v, 1) for k, v in r.items()} for r in runs],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "at": datetime.now().isoformat(timespec="seconds"),
    }
    print(json.dumps(out, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
