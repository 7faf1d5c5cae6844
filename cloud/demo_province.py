"""The demo's province: the broker as a cluster of three NATS nodes (JetStream and MQTT),
two collectors taking the boxes' messages as one queue group, and three boxes streaming, each
starting on its own node. A node is SIGKILLed mid-stream: its box moves to another node, the
collectors go on, and every event is stored once (docs/scaling.md)."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from cloud.config import CloudConfig
from cloud.registry import Identity
from edge.config import EdgeConfig

BOXES = 3
SITE = "province-canteen"


def _collector(work: Path, name: str, urls: list[str], intake: list[str], db: Path) -> CloudConfig:
    return CloudConfig.model_validate(
        {
            "mqtt": {"url": urls[0], "failover_urls": urls[1:], "client_id": f"province-{name}",
                     "protocol": "3.1.1", "backoff_initial_s": 0.1, "backoff_max_s": 1},
            "collector": {"share_group": "collectors", "intake_urls": intake},
            "data_dir": str(work / name),
            "store": {"path": str(db)},
            "web": {"port": 0},
            "tickets": {"keys_dir": str(work / name / "keys")},
        }
    )  # fmt: skip


def _box(work: Path, n: int, urls: list[str]) -> EdgeConfig:
    mine = urls[n % len(urls)]
    return EdgeConfig.model_validate(
        {
            "device": f"pbox-{n}",
            "site": SITE,
            "data_dir": str(work / f"pbox-{n}"),
            "mqtt": {"url": mine, "failover_urls": [u for u in urls if u != mine],
                     "protocol": "3.1.1", "backoff_initial_s": 0.1, "backoff_max_s": 1},
            "sync": {"heartbeat_s": 5, "confirm_timeout_s": 2, "poll_interval_s": 0.05},
            "display": {"port": 0},
        }
    )  # fmt: skip


def story(workdir: Path, say: Any, wait: Any) -> str:
    """Run it; the summary's line, or '' when it did not hold."""
    from cloud.cluster_local import NatsCluster
    from cloud.service import CloudService
    from edge.agent import Agent

    work = workdir / "province"
    work.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    cluster = NatsCluster(work).start()
    say(f"province: 3 NATS nodes (JetStream, MQTT) ready in {time.monotonic() - began:.1f} s")
    urls, db = cluster.mqtt_urls, work / "province.db"
    stop = threading.Event()
    with contextlib.ExitStack() as running:  # each thing started is stopped, whatever fails
        running.callback(cluster.stop)
        running.callback(stop.set)
        services = [
            CloudService(_collector(work, name, urls, cluster.nats_urls, db))
            for name in ("c1", "c2")
        ]
        store = services[0].store
        store.sites.set(SITE, "province")
        store.registry.put_many(
            [Identity(name=f"pbox-{n}", kind="device", role="kitchen", site=SITE,
                      district="province") for n in range(BOXES)]
        )  # fmt: skip
        for s in services:
            s.start()
            running.callback(s.stop)
            wait(s.collector.connected.is_set, 30, "a collector on the cluster")
        agents = [Agent(_box(work, n, urls)) for n in range(BOXES)]
        made = [0] * BOXES

        def stream(n: int) -> None:
            while not stop.wait(0.05):
                agents[n].emit("test", {"n": made[n]})
                made[n] += 1

        threads = [threading.Thread(target=stream, args=(n,), daemon=True) for n in range(BOXES)]
        for a in agents:
            a.start()
            running.callback(a.stop)
        for t in threads:
            t.start()
        wait(lambda: store.events.count() > 60, 60, "the boxes streaming")
        t0 = time.monotonic()
        cluster.kill(0)
        moved = agents[0].sync
        wait(lambda: moved.brokers.url != urls[0] and moved.connected, 60, "pbox-0 moving")
        took = time.monotonic() - t0
        say(f"  node n1 SIGKILLed mid-stream: pbox-0 moved to another node in {took:.1f} s")
        time.sleep(2)  # the stream goes on without n1 (shown, not synchronisation)
        stop.set()
        for t in threads:
            t.join(5)
        back = cluster.restart(0)
        say(f"  n1 started again on its own data: current in {back:.1f} s")
        wait(lambda: all(a.outbox.stats().depth == 0 for a in agents), 90, "every event confirmed")
        rows = {d["device"]: d for d in store.devices.list()}
        total = sum(a.outbox.last_seq() for a in agents)  # with each box's start event
        stored = sum(rows.get(f"pbox-{n}", {}).get("events", 0) for n in range(BOXES))
        missing = sum(rows.get(f"pbox-{n}", {}).get("missing", 0) for n in range(BOXES))
        ids = store.db.query(
            "SELECT count(*) AS n, count(DISTINCT id) AS d FROM events WHERE site = ?", (SITE,)
        )[0]
        shares = [s.collector.counters["events"] for s in services]
        say(f"  {total} events made, {stored} stored; the collectors took {shares[0]} + "
            f"{shares[1]}; missing {missing}")  # fmt: skip
        if stored != total or missing or ids["n"] != ids["d"] or min(shares) == 0:
            return ""
        return (
            f"3 NATS nodes, one SIGKILLed: its box moved in {took:.1f} s; {total} events, "
            f"2 collectors ({shares[0]} + {shares[1]}), lost 0, doubled 0"
        )
