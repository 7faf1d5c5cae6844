"""Sync benchmark: raw paho QoS 1 against Shian end to end, through one Mosquitto, in one run.

(a) raw: one paho client publishes one 300-byte message per event at QoS 1 and a subscriber
    receives them; events/s from the first publish to the last delivery.
(b) shian: an edge agent and a collector, each its own process, as deployed. Throughput: events
    committed into the edge outbox in batches as fast as possible, until all are committed in
    the cloud database. Latency: the agent makes 200 events/s itself; each event's latency is
    the collector's commit stamp minus the event's time (taken just before its outbox commit).
Each run starts its own Mosquitto on a free port; medians over --runs (default 3).

    python bench/sync.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402

from cloud.store import Store  # noqa: E402
from edge.store.outbox import Outbox  # noqa: E402
from tests.conftest import register, write_toml  # noqa: E402
from tests.support.mosquitto import Mosquitto, wait_listening  # noqa: E402

NOTE = "x" * 150  # makes an envelope of about 300 bytes


def raw_paho(port: int, n: int) -> float:
    """One message per event, QoS 1, published and delivered; events per second."""
    got = 0
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal got
        got += 1
        if got == n:
            done.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, "raw-sub", protocol=MQTTProtocolVersion.MQTTv5)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe("raw/#", qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, "raw-pub", protocol=MQTTProtocolVersion.MQTTv5)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.5)  # let the subscription settle (not a measurement)
    payload = json.dumps({"note": NOTE, "n": 0}).encode().ljust(300)
    t0 = time.perf_counter()
    for _ in range(n):
        pub.publish("raw/events", payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - t0
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return n / elapsed


def spawn(module: str, conf: Path, log: Path) -> subprocess.Popen[bytes]:
    fh = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", module, "run", "--config", str(conf), "--log-level", "WARNING"],
        stdout=fh,
        stderr=fh,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def count(db: Path, device: str) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as c:
            sql = "SELECT count(*) FROM events WHERE kind='test' AND device=?"
            return int(c.execute(sql, (device,)).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def wait_count(db: Path, device: str, n: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if count(db, device) >= n:
            return time.perf_counter()
        time.sleep(0.01)
    raise TimeoutError(f"only {count(db, device)} of {n} events arrived")


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def shian(work: Path, port: int, n: int, rate: float, seconds: float) -> dict[str, float]:
    url = f"mqtt://127.0.0.1:{port}"
    cloud_db = work / "cloud.db"
    cloud_conf = write_toml(
        work / "cloud.toml",
        {
            "mqtt": {"url": url, "client_id": "bench-collector"},
            "store": {"path": str(cloud_db)},
        },
    )
    edge = {
        "device": "bench-1",
        "site": "bench",
        "data_dir": str(work / "edge"),
        "mqtt": {"url": url},
        "sync": {"poll_interval_s": 0.05},
    }
    edge_conf = write_toml(work / "edge.toml", edge)
    store = Store(cloud_db)  # the boxes registered, as any install does
    for device in ("bench-1", "bench-2"):
        register(store, device, "bench")
    store.close()
    cloud = spawn("cloud.cli", cloud_conf, work / "cloud.log")
    agent = spawn("edge.cli", edge_conf, work / "edge.log")
    try:
        while not (work / "edge" / "outbox.db").exists() or not cloud_db.exists():
            time.sleep(0.05)
        # throughput: commit n events in batches of 500, as fast as the outbox takes them
        outbox = Outbox(work / "edge" / "outbox.db", "bench-1", "bench")
        t0 = time.perf_counter()
        for i in range(0, n, 500):
            outbox.enqueue_many([("test", {"note": NOTE, "n": i + k}, None) for k in range(500)])
        t1 = wait_count(cloud_db, "bench-1", n, 300)
        throughput = n / (t1 - t0)
        while outbox.stats().depth:  # let the last confirmations arrive before stopping
            time.sleep(0.05)
        outbox.close()
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
    # latency: a second box makes `rate` events/s itself for `seconds`
    edge.update(device="bench-2", data_dir=str(work / "edge2"))
    edge["demo"] = {"sample_every_s": 1 / rate, "sample_count": int(rate * seconds)}
    write_toml(edge_conf, edge)
    agent = spawn("edge.cli", edge_conf, work / "edge.log")
    try:
        wait_count(cloud_db, "bench-2", int(rate * seconds), seconds * 3 + 30)
        rss = rss_peak_mb(agent.pid)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(30)
        cloud.send_signal(signal.SIGTERM)
        cloud.wait(30)
    with sqlite3.connect(cloud_db) as c:
        rows = c.execute(
            "SELECT received, ts FROM events WHERE kind='test' AND device='bench-2'"
        ).fetchall()
    lat = sorted((rec - datetime.fromisoformat(ts).timestamp()) * 1000 for rec, ts in rows)
    return {
        "shian_events_per_s": throughput,
        "p50_ms": lat[len(lat) // 2],
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "latency_events": len(lat),
        "edge_rss_mb": rss,
    }


def commit_ms(work: Path, synchronous: str, n: int = 300) -> float:
    """Median time of one single-event outbox commit with this ``synchronous`` setting."""
    outbox = Outbox(work / f"commit-{synchronous}.db", "bench-0", "bench")
    outbox.db.execute(f"PRAGMA synchronous = {synchronous}")
    times = []
    for i in range(n):
        t = time.perf_counter()
        outbox.enqueue("test", {"note": NOTE, "n": i})
        times.append(time.perf_counter() - t)
    outbox.close()
    return statistics.median(times) * 1000


def one_run(n_raw: int, n_shian: int, rate: float, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="shian-bench-") as tmp:
        work = Path(tmp)
        full, normal = commit_ms(work, "FULL"), commit_ms(work, "NORMAL")
        broker = Mosquitto(work / "mosquitto").start()
        try:
            wait_listening(broker.port, broker.proc)
            raw = raw_paho(broker.port, n_raw)
            result = shian(work, broker.port, n_shian, rate, seconds)
        finally:
            broker.stop()
    result["raw_events_per_s"] = raw
    result["commit_ms_full"], result["commit_ms_normal"] = full, normal
    result["ratio"] = result["shian_events_per_s"] / raw
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--raw-events", type=int, default=20_000)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--rate", type=float, default=200.0, help="events/s for the latency test")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the latency test")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = [
        one_run(args.raw_events, args.events, args.rate, args.seconds) for _ in range(args.runs)
    ]
    keys = [
        "raw_events_per_s",
        "shian_events_per_s",
        "ratio",
        "p50_ms",
        "p99_ms",
        "edge_rss_mb",
        "commit_ms_full",
        "commit_ms_normal",
    ]
    out: dict[str, Any] = {k: round(statistics.median(r[k] for r in runs), 2) for k in keys}
    out["runs"] = [{k: round(r[k], 2) for k in keys} for r in runs]
    out["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    if args.json:
        print(json.dumps(out))
    else:
        for k in keys:
            print(f"{k:>20}: {out[k]}")
        print(f"{'machine':>20}: {out['machine']}")


if __name__ == "__main__":
    main()
