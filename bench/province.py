"""Province benchmark: simulated boxes (default 5,000) on the province's broker, a 3-node NATS
cluster (JetStream + MQTT 3.1.1, ``cloud.cluster``'s recipe), with two collectors
(``shian-cloud run``) taking the boxes' messages as one NATS queue group on one PostgreSQL;
a node SIGKILLed mid-run and restarted later. Then the SAME workload on ONE Mosquitto in the
same run (collectors as a ``$share`` group; by default that broker is SIGKILLed at the same
point and started again at once, as systemd would), for the ratios.

Each broker, in order:
1. connect: every box connects (box n to node n % 3, then the others in order; QoS 0
   subscription to its cmd/ack, as the edge does); ``connect_all_s`` from the simulators'
   start (boxes spread their first connection over ``--ramp-s``).
2. steady: ``--steady-s`` at the simulated rates (kitchens 4 violations an hour, stalls a
   ticket every 90 s) times ``--rate``; latency = event made on the box -> the collector's
   confirmation back on the box.
3. kill: node ``--kill-node`` SIGKILLed (Mosquitto: SIGKILL, then started again). Measured
   from the kill: ``moved_s`` every box that was on the node connected again in a new session
   (on another node); ``all_connected_s`` the last moment any box was not connected;
   ``backlog_confirmed_s`` the last moment any event older than ``--lag-s`` was unconfirmed;
   latency of the events made in the window (kill -> at least ``--observe-s`` later, until
   recovered).
4. restart: the node started again (``restart_s``: until it is current), latency across it
   and ``--after-s`` more.
5. burst: ``--burst-s`` of every box's events queued at once on connected boxes
   (``burst_events_per_s``: made -> all confirmed), the throughput figure.
6. accounting: rate 0, every event confirmed; every seq each box made against the database
   (lost, doubled), as bench/city.py does.

    python bench/province.py --boxes 5000 --json
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from city import accounting, machine, register_sites, wait_until  # noqa: E402
from cityproc import CollectorProcess, Simulator, cpu_seconds  # noqa: E402

from cloud.cluster_local import quiet_port  # noqa: E402
from cloud.store import Store  # noqa: E402
from tests.conftest import cloud_config, write_toml  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.nats import NatsCluster  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402

POLL_S = 0.25


def say(what: str) -> None:
    """Progress, on stderr (the results go to stdout)."""
    print(f"{datetime.now():%H:%M:%S} {what}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile, as citysim's."""
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1)


def latency(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": pct(values, 0.5),
        "p99_ms": pct(values, 0.99),
        "max_ms": round(max(values), 1) if values else None,
        "n": len(values),
    }


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of every core, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + f[4]
    return sum(f) - idle, sum(f)


class Meter:
    """CPU of a set of processes (in cores) and of the whole machine, since ``mark``."""

    def __init__(self, pids: Callable[[], dict[str, list[int]]]) -> None:
        self.pids = pids
        self.mark()

    def _read(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for name, pids in self.pids().items():
            out[name] = {p: cpu for p in pids if (cpu := cpu_seconds(p)) is not None}
        return out

    def mark(self) -> None:
        self._t, self._cpu, self._busy = time.monotonic(), self._read(), machine_busy()

    def cores(self) -> dict[str, float]:
        wall = max(1e-9, time.monotonic() - self._t)
        now = self._read()
        # per process: one started since the mark counts from 0, one gone since is not counted
        out = {
            f"{k}_cores": round(
                sum(c - self._cpu.get(k, {}).get(p, 0.0) for p, c in now[k].items()) / wall, 3
            )
            for k in now
        }
        busy, total = machine_busy()
        ncpu = len([x for x in Path("/proc/stat").read_text().split("\n") if x[:3] == "cpu"]) - 1
        frac = (busy - self._busy[0]) / max(1, total - self._busy[1])
        out["machine_busy_cores"] = round(frac * ncpu, 3)
        return out


class Sims:
    """The simulated boxes in ``procs`` citysim processes, a slice of boxes each."""

    def __init__(self, a: argparse.Namespace, brokers: list[str], log: Path) -> None:
        self.boxes = a.boxes
        per = math.ceil(a.boxes / a.sims)
        self.sims: list[Simulator] = []
        for i, first in enumerate(range(0, a.boxes, per)):
            extra = ["--brokers", ",".join(brokers), "--first", str(first), "--sub-qos", "0"]
            extra += ["--seed", str(a.seed + i), "--ramp-s", str(a.ramp_s)]
            extra += ["--connect-timeout-s", "10"]  # the edge's connect_timeout_s
            self.sims.append(Simulator(0, min(per, a.boxes - first), log, extra))
        self.pool = ThreadPoolExecutor(len(self.sims))

    @property
    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.sims]

    def all(self, line: str) -> list[dict[str, Any]]:
        return list(self.pool.map(lambda s: s.command(line), self.sims))

    def stats(self) -> dict[str, Any]:
        got = self.all("stats")
        return {
            "connected": sum(g["connected"] for g in got),
            "generated": sum(g["generated"] for g in got),
            "unconfirmed": sum(g["unconfirmed"] for g in got),
            "nodes": [sum(x) for x in zip(*(g["nodes"] for g in got), strict=True)],
            "watched": [sum(g["watched"][0] for g in got), sum(g["watched"][1] for g in got)],
        }

    def latencies(self) -> list[float]:
        return [x for g in self.all("latencies") for x in g["latencies"]]

    def pending_before(self, t: float) -> int:
        return sum(g["pending"] for g in self.all(f"pending_before {t}"))

    def pending_examples(self, t: float) -> list[Any]:
        return [x for g in self.all(f"pending_before {t}") for x in g["examples"]]

    def made(self) -> dict[str, int]:
        return {d: s for g in self.all("dump") for d, s in g["seqs"].items()}

    def stop(self) -> None:
        for s in self.sims:
            s.kill()
        self.pool.shutdown()


def collector_conf(
    work: Path, name: str, urls: list[str], first: int, db: str, intake: list[str]
) -> Path:
    """A collector as deployed on the broker: its MQTT node first, the others as failover;
    on the cluster, the boxes' messages by the NATS queue group (``intake_urls``)."""
    extra: dict[str, Any] = {"intake_urls": intake} if intake else {}
    cfg = cloud_config(
        work / name, urls[first], batch_max_messages=500, share_group="collectors", **extra
    )
    assert cfg.mqtt is not None
    cfg.mqtt.client_id = f"collector-{name}"
    cfg.mqtt.failover_urls = [u for u in urls if u != urls[first]]
    cfg.mqtt.backoff_initial_s, cfg.mqtt.backoff_max_s = 0.5, 60  # the defaults, as deployed
    cfg.store.url = db
    cfg.store.path = work / name / "cloud.db"
    cfg.store.snapshots_dir = work / "snapshots"
    cfg.alerts.heartbeat_timeout_s = 120
    return write_toml(
        work / f"{name}.toml",
        cfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )


def collectors_ready(logs: list[Path], timeout: float = 60) -> float:
    def ready() -> bool:
        return all(p.exists() and "collector connected to" in p.read_text() for p in logs)

    return wait_until(ready, timeout, "collectors connected")


class Broker:
    """The cluster or the one Mosquitto, behind one face: urls, pids, kill, restart."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind = kind
        self.cluster: NatsCluster | None = None
        self.mosquitto: Mosquitto | None = None
        if kind == "cluster":
            (work / "nats").mkdir()
            self.cluster = NatsCluster(work / "nats")
            plan, n = self.cluster.plan, len(self.cluster.procs)
            plan.client_ports, plan.cluster_ports, plan.mqtt_ports, plan.http_ports = (
                [quiet_port() for _ in range(n)] for _ in range(4)
            )
            self.cluster.start(120)
            self.mqtt_urls, self.intake = self.cluster.mqtt_urls, self.cluster.nats_urls
        else:
            store_dir = work / "mosquitto" / "db"  # persistence on, as city.py (production)
            store_dir.mkdir(parents=True)
            self.mosquitto = Mosquitto(
                work / "mosquitto",
                port=quiet_port(),
                extra=f"persistence true\npersistence_location {store_dir}/",
            ).start()
            self.mqtt_urls, self.intake = [self.mosquitto.url], []

    def pids(self) -> list[int]:
        if self.cluster is not None:
            return [p.pid for p in self.cluster.procs if p is not None]
        assert self.mosquitto is not None
        return [self.mosquitto.proc.pid] if self.mosquitto.proc is not None else []

    def kill(self, node: int) -> None:
        if self.cluster is not None:
            self.cluster.kill(node)
        else:
            assert self.mosquitto is not None
            self.mosquitto.stop(signal.SIGKILL)
            self.mosquitto.start()  # at once, as Restart=always would

    def restart(self, node: int) -> float | None:
        if self.cluster is not None:
            return round(self.cluster.restart(node, 120), 2)
        return None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
        if self.mosquitto is not None:
            self.mosquitto.stop()


def recovery(sims: Sims, a: argparse.Namespace, killed: float) -> dict[str, Any]:
    """Poll from the kill until at least ``--observe-s`` have passed and every box has been
    connected, with nothing older than ``--lag-s`` unconfirmed, since the last poll."""
    moved = None
    last_down = last_stuck = 0.0
    min_connected, max_stuck = sims.boxes, 0
    while True:
        now = time.monotonic()
        el = now - killed
        s = sims.stats()
        stuck = sims.pending_before(time.time() - a.lag_s)
        min_connected = min(min_connected, s["connected"])
        max_stuck = max(max_stuck, stuck)
        if moved is None and s["watched"][1] >= s["watched"][0]:
            moved = el
        if s["connected"] < sims.boxes or moved is None:
            last_down = el + POLL_S
        if stuck:
            last_stuck = el + POLL_S
        if el >= a.observe_s and moved is not None and s["connected"] == sims.boxes and not stuck:
            break
        if el > a.observe_s + a.recover_timeout_s:
            examples = sims.pending_examples(time.time() - a.lag_s)
            raise TimeoutError(f"not recovered {el:.0f} s after the kill: {s}, stuck {stuck}"
                               f" (device, seq, age, connected, broker, since sent, queued):"
                               f" {examples}")  # fmt: skip
        time.sleep(max(0.0, POLL_S - (time.monotonic() - now)))
    return {
        "watched_boxes": s["watched"][0],
        "moved_s": round(moved, 2),
        "all_connected_s": round(last_down, 2),
        "backlog_confirmed_s": round(max(last_stuck, last_down), 2),
        "boxes_down_max": sims.boxes - min_connected,
        "events_waiting_max": max_stuck,
        "nodes_after": s["nodes"],
    }


def run_broker(kind: str, a: argparse.Namespace, work: Path, pg: Postgres) -> dict[str, Any]:
    work.mkdir(parents=True)
    db = pg.new_database()
    store = Store(db, work / "snapshots")
    register_sites(store, a.boxes, a.districts)
    broker = Broker(kind, work)
    urls = broker.mqtt_urls
    collectors: list[CollectorProcess] = []
    sims: Sims | None = None
    out: dict[str, Any] = {"broker": kind, "boxes": a.boxes, "nodes": len(urls)}
    try:
        logs = [work / f"{n}.log" for n in ("a", "b")]
        for i, name in enumerate(("a", "b")):
            conf = collector_conf(work, name, urls, i % len(urls), db, broker.intake)
            collectors.append(CollectorProcess(conf, logs[i]))
        collectors_ready(logs)
        meter = Meter(
            lambda: {
                "collectors": [c.proc.pid for c in collectors],
                "broker": broker.pids(),
                "sims": sims.pids if sims else [],
            }
        )
        began = time.monotonic()
        sims = Sims(a, urls, work / "sim.log")
        sims.all(f"rate {a.rate}")
        wait_until(lambda: sims.stats()["connected"] == a.boxes, a.connect_timeout_s,
                   "all boxes connect", every=0.5)  # fmt: skip
        out["connect_all_s"] = round(time.monotonic() - began, 2)
        say(f"{kind}: all connected in {out['connect_all_s']} s; steady {a.steady_s} s")
        out["connect_nodes"] = sims.stats()["nodes"]
        # 2. steady
        sims.all("mark")
        meter.mark()
        time.sleep(a.steady_s)
        lat = sims.latencies()
        if not lat:
            raise RuntimeError(f"{kind}: no event confirmed in the steady phase; see {work}")
        out["steady"] = {
            "seconds": a.steady_s,
            **latency(lat),
            "events_per_s": round(len(lat) / a.steady_s, 1),
            **meter.cores(),
        }
        # 3. kill a node (the one Mosquitto: killed and started again)
        node = a.kill_node % len(urls)
        if kind == "cluster" or a.mosquitto_kill:
            sims.all(f"watch {node}")
            sims.all("mark")
            meter.mark()
            killed = time.monotonic()
            say(f"{kind}: kill node {node}")
            broker.kill(node)
            rec = recovery(sims, a, killed)
            out["kill"] = {
                "node": node if kind == "cluster" else "mosquitto (restarted at once)",
                **rec,
                **latency(sims.latencies()),
                "seconds": round(time.monotonic() - killed, 1),
                **meter.cores(),
            }
        # 4. the node back, and latency across its return
        say(f"{kind}: recovered; restart, then {a.after_s} s")
        sims.all("mark")
        meter.mark()
        t = time.monotonic()
        out["restart_s"] = broker.restart(node)
        time.sleep(max(0.0, a.after_s - (time.monotonic() - t)))
        out["after_restart"] = {**latency(sims.latencies()), **meter.cores()}
        # 5. burst: --burst-s of events on every box at once
        if a.burst_s > 0:
            say(f"{kind}: burst of {a.burst_s} s of events")
            before = sims.stats()["unconfirmed"]
            meter.mark()
            t = time.monotonic()
            queued = sum(g["unconfirmed"] for g in sims.all(f"backlog {a.burst_s}")) - before
            epoch = time.time()  # every event of the burst was made before this
            wait_until(lambda: sims.pending_before(epoch) == 0, a.recover_timeout_s,
                       "burst confirmed", every=POLL_S)  # fmt: skip
            drain = time.monotonic() - t
            out["burst"] = {
                "events": queued,
                "drain_s": round(drain, 2),
                "events_per_s": round(queued / drain),
                **meter.cores(),
            }
        # 6. accounting
        say(f"{kind}: last events, accounting")
        sims.all("rate 0")
        wait_until(lambda: sims.stats()["unconfirmed"] == 0, a.recover_timeout_s,
                   "last events confirmed", every=0.5)  # fmt: skip
        made = sims.made()
        out.update(accounting(store, made))
        out["doubled"] = out.pop("duplicates")
        out.pop("pg_bytes_per_event", None)  # not a figure of this benchmark
        out["collector_rss_mb"] = [c.peak_rss_mb() for c in collectors]
    finally:
        if sims is not None:
            sims.stop()
        for c in collectors:
            c.stop()
        broker.stop()
        store.close()
    return out


def ratios(cluster: dict[str, Any], mosq: dict[str, Any]) -> dict[str, float | None]:
    def r(path: tuple[str, ...]) -> float | None:
        x: Any = cluster
        y: Any = mosq
        for k in path:
            x, y = (x or {}).get(k), (y or {}).get(k)
        return round(x / y, 2) if isinstance(x, int | float) and y else None

    return {
        "steady_p50": r(("steady", "p50_ms")),
        "steady_p99": r(("steady", "p99_ms")),
        "kill_p99": r(("kill", "p99_ms")),
        "backlog_confirmed_s": r(("kill", "backlog_confirmed_s")),
        "burst_events_per_s": r(("burst", "events_per_s")),
        "steady_collectors_cores": r(("steady", "collectors_cores")),
        "steady_broker_cores": r(("steady", "broker_cores")),
        "connect_all_s": r(("connect_all_s",)),
    }


def one_run(a: argparse.Namespace, pg: Postgres) -> dict[str, Any]:
    result: dict[str, Any] = {"loadavg_before": Path("/proc/loadavg").read_text().split()[:3]}
    with tempfile.TemporaryDirectory(prefix="shian-province-") as tmp:
        work = Path(tmp) if a.keep is None else a.keep / datetime.now().strftime("%H%M%S")
        for kind in a.brokers:
            say(f"{kind}: {a.boxes} boxes, in {work / kind}")
            result[kind] = run_broker(kind, a, work / kind, pg)
    if "cluster" in result and "mosquitto" in result:
        result["ratio_cluster_to_mosquitto"] = ratios(result["cluster"], result["mosquitto"])
    return result


def medians(runs: list[Any]) -> Any:
    """The median of every number across runs, in the runs' shape (other values: the first)."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: medians([r.get(k) for r in runs]) for k in first}
    nums = [x for x in runs if isinstance(x, int | float) and not isinstance(x, bool)]
    if nums and len(nums) == len(runs):
        return round(statistics.median(nums), 3)
    return first


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--boxes", type=int, default=5000, help="Simulated boxes (half kitchens).")
    p.add_argument("--sims", type=int, default=0,
                   help="Simulator processes (0: one per 2,500 boxes).")  # fmt: skip
    p.add_argument("--districts", type=int, default=10, help="Districts the sites are in.")
    p.add_argument("--rate", type=float, default=1.0, help="Multiplier of every box's rate.")
    p.add_argument("--steady-s", type=float, default=60, help="Length of the steady phase.")
    p.add_argument("--observe-s", type=float, default=60,
                   help="Kill window: observed at least this long after the kill.")  # fmt: skip
    p.add_argument("--lag-s", type=float, default=2.0,
                   help="An event unconfirmed longer than this is backlog.")  # fmt: skip
    p.add_argument("--after-s", type=float, default=30, help="Measured across the restart.")
    p.add_argument("--burst-s", type=float, default=1800,
                   help="Seconds of events queued at once on every box (0: no burst).")  # fmt: skip
    p.add_argument("--kill-node", type=int, default=0, help="Cluster node to SIGKILL (0-2).")
    p.add_argument("--no-mosquitto-kill", dest="mosquitto_kill", action="store_false",
                   help="Do not kill and restart the Mosquitto.")  # fmt: skip
    p.add_argument("--brokers", default="cluster,mosquitto",
                   help="Which, in order: cluster, mosquitto.")  # fmt: skip
    p.add_argument("--ramp-s", type=float, default=10, help="Boxes first connect over this.")
    p.add_argument("--connect-timeout-s", type=float, default=300, help="For connect-all.")
    p.add_argument("--recover-timeout-s", type=float, default=300, help="For each drain.")
    p.add_argument("--seed", type=int, default=1, help="Seed of the first simulator.")
    p.add_argument("--runs", type=int, default=1, help="Repeat; medians reported.")
    p.add_argument("--keep", type=Path, help="Work (logs, configs) in this folder, kept.")
    p.add_argument("--json", action="store_true", help="Print JSON only.")
    a = p.parse_args()
    a.brokers = [b.strip() for b in a.brokers.split(",") if b.strip()]
    if not set(a.brokers) <= {"cluster", "mosquitto"}:
        p.error("--brokers: cluster, mosquitto")
    a.sims = a.sims or max(1, math.ceil(a.boxes / 2500))
    head: dict[str, Any] = {"machine": machine(), "date": datetime.now().isoformat()}
    head["command"] = " ".join(["python", "bench/province.py", *sys.argv[1:]])
    head["simulator_processes"] = a.sims
    pg = Postgres().start()
    try:
        runs = []
        for i in range(a.runs):
            runs.append(one_run(a, pg))
            if not a.json:
                print(f"run {i + 1}/{a.runs} done", file=sys.stderr, flush=True)
    finally:
        pg.stop()
    result = {**head, **(medians(runs) if len(runs) > 1 else runs[0])}
    if len(runs) > 1:
        result["runs"] = runs
    print(json.dumps(result, indent=None if a.json else 2, ensure_ascii=False))
    ok = all(result[k]["lost"] == 0 and result[k]["doubled"] == 0 for k in a.brokers)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
