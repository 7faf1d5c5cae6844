"""City benchmark: N simulated boxes (default 2,000) on one collector, through one Mosquitto,
on PostgreSQL (or SQLite), all started here; and the store's ingest rate next to the raw
batched insert rate of the same database (bench/ingest.py), in the same run.

Scenarios, in order, on one collector process (``shian-cloud run``):
1. steady day: every box connects (retained status, last will, heartbeats every 30 s);
   kitchens a few violations an hour, stalls a ticket every 90 s, with a morning rush (x5) in
   the middle third. Latency = event made on the box -> the collector's confirmation back.
2. reconnection storm: the broker is stopped, every box queues an hour of events, the broker
   starts again and every box reconnects at once (jittered backoff) and sends its backlog.
   storm_drain_s = broker start -> every box connected and every event confirmed.
3. power cut: the simulator is SIGKILLed, so the broker publishes every box's last will;
   counted: alert messages a district's supervisor receives, incidents, time to settle.
Then lost / duplicates: every sequence number each box made, against the database.

    python bench/city.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import ingest  # noqa: E402
from cityproc import CollectorProcess, Simulator, Supervisor  # noqa: E402
from citysim import device_of, district_of, site_of  # noqa: E402

from cloud.registry import Identity  # noqa: E402
from cloud.store import Store  # noqa: E402
from tests.conftest import cloud_config, write_toml  # noqa: E402
from tests.support.mosquitto import Mosquitto  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402


def wait_until(check: Any, timeout: float, what: str, every: float = 0.2) -> float:
    """Poll ``check`` until true; seconds it took (a benchmark measures, so no fixed sleeps)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(every)
    return time.monotonic() - t0


def register_sites(store: Store, boxes: int, districts: int) -> None:
    """Every simulated box's site and registry entry, as an operator's imports make them."""
    store.sites.set_many([(site_of(n), district_of(n, districts), "", "") for n in range(boxes)])
    store.registry.put_many([identity(n, districts) for n in range(boxes)])


def identity(n: int, districts: int) -> Identity:
    role = "kitchen" if n % 2 == 0 else "stall"
    stall = {"market": "M", "stall_no": str(n), "retailer": "R"} if role == "stall" else {}
    return Identity(
        name=device_of(n),
        kind="device",
        role=role,
        site=site_of(n),
        district=district_of(n, districts),
        **stall,
    )


def accounting(store: Store, made: dict[str, int]) -> dict[str, int]:
    rows = store.db.query(
        "SELECT device, count(*) AS n, count(DISTINCT seq) AS d, max(seq) AS top FROM events"
        " GROUP BY device"
    )
    got = {r["device"]: r for r in rows}
    lost = dup = 0
    for device, top in made.items():
        r = got.get(device, {"n": 0, "d": 0, "top": 0})
        lost += top - int(r["d"])
        dup += int(r["n"]) - int(r["d"])
    absorbed = store.db.query("SELECT sum(duplicates) AS n FROM devices")[0]["n"]
    out = {
        "events": sum(made.values()),
        "lost": lost,
        "duplicates": dup,
        "redeliveries_absorbed": int(absorbed or 0),
    }
    if store.db.dialect == "postgresql":  # for sizing: the table with its indexes, per event
        size = store.db.query(  # events is partitioned by month: its months' tables and indexes
            "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) AS b FROM pg_inherits"
            " WHERE inhparent = 'events'::regclass"
        )[0]["b"]
        out["pg_bytes_per_event"] = round(int(size) / max(1, out["events"]))
    return out


def run(a: argparse.Namespace, work: Path, pg: Postgres | None) -> dict[str, Any]:
    # as a production broker is set up: persistence on, so the collector's session and the
    # messages queued for it outlive a restart
    store_dir = work / "mosquitto" / "db"
    store_dir.mkdir(parents=True)
    broker = Mosquitto(
        work / "mosquitto", extra=f"persistence true\npersistence_location {store_dir}/"
    ).start()
    target: str | Path = pg.new_database() if pg else work / "cloud.db"
    cfg = cloud_config(work, broker.url, batch_max_messages=500)
    cfg.store.url = target if isinstance(target, str) else ""
    cfg.store.path = work / "cloud.db"
    cfg.alerts.heartbeat_timeout_s = 120
    assert cfg.mqtt is not None
    cfg.mqtt.backoff_initial_s, cfg.mqtt.backoff_max_s = 0.5, 60  # the defaults, as deployed
    conf = write_toml(
        work / "cloud.toml", cfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    )
    store = Store(target, work / "snapshots")
    register_sites(store, a.boxes, a.districts)
    collector = CollectorProcess(conf, work / "cloud.log")
    supervisor = Supervisor(broker.port)
    sim = Simulator(broker.port, a.boxes, work / "sim.log")
    out: dict[str, Any] = {"boxes": a.boxes, "districts": a.districts, "store": store.db.dialect}
    try:
        out["connect_all_s"] = round(
            wait_until(lambda: sim.stats()["connected"] == a.boxes, 120, "all boxes connect"), 2
        )
        # 1. steady day with a morning rush in the middle third
        sim.command("mark")
        collector.cpu_mark()
        third = a.steady_s / 3
        for rate in (1, 5, 1):
            sim.command(f"rate {rate}")
            time.sleep(third)  # the scenario's duration: wall time is what is being simulated
        steady = sim.stats()
        out["steady"] = {
            "seconds": a.steady_s,
            "events": steady["latency_ms"][2],
            "collector_cpu_cores": collector.cpu_cores(),
        }
        p50, p99 = steady["latency_ms"][:2]
        out["p50_ms"], out["p99_ms"] = (round(x, 1) if x is not None else None for x in (p50, p99))
        # 2. broker restart: an hour of backlog on every box, then all reconnect at once
        broker.stop()
        wait_until(lambda: sim.stats()["connected"] == 0, 60, "boxes notice the broker gone")
        before = sim.stats()["unconfirmed"]
        after = sim.command(f"backlog {a.backlog_s}")["unconfirmed"]
        out["storm_backlog_events"] = after - before
        collector.cpu_mark()
        broker.start()
        started, reconnected = time.monotonic(), list[float]()

        def drained() -> bool:
            s = sim.stats()
            if s["connected"] == a.boxes and not reconnected:
                reconnected.append(time.monotonic() - started)
            return bool(s["connected"] == a.boxes and s["unconfirmed"] == 0)

        out["storm_drain_s"] = round(wait_until(drained, 600, "backlog drained"), 2)
        out["storm_reconnect_s"] = round(reconnected[0], 2)
        out["storm_collector_cpu_cores"] = collector.cpu_cores()
        out["storm_events_per_s"] = round(out["storm_backlog_events"] / out["storm_drain_s"])
        sim.command("rate 0")
        wait_until(lambda: sim.stats()["unconfirmed"] == 0, 120, "last events confirmed")
        # the backlog's alerts (violations of the hour) reach the supervisors, then all is quiet
        unsent = "SELECT count(*) AS n FROM alert_outbox WHERE sent IS NULL"
        out["storm_alerts_sent_s"] = round(
            out["storm_drain_s"]
            + wait_until(lambda: store.db.query(unsent)[0]["n"] == 0, 300, "alerts sent"),
            2,
        )
        made = sim.command("dump")["seqs"]
        out.update(accounting(store, made))
        # 3. power cut: every box dies at once; the broker sends every last will
        supervisor.mark()
        t0 = time.monotonic()
        sim.kill()
        wait_until(
            lambda: (
                store.db.query("SELECT count(*) AS n FROM devices WHERE state = 'offline'")[0]["n"]
                == a.boxes
            ),
            120,
            "every box offline",
        )
        out["power_cut"] = power_cut_report(store, supervisor, a, time.monotonic() - t0)
        out["collector_rss_mb"] = collector.peak_rss_mb()
    finally:
        sim.kill()
        supervisor.stop()
        collector.stop()
        store.close()
        broker.stop()
    return out


def power_cut_report(
    store: Store, supervisor: Supervisor, a: argparse.Namespace, settled: float
) -> dict[str, Any]:
    # the last incident republish comes within incident_update_s (10 s) of the last will
    if a.boxes // a.districts >= 5:  # storm_devices: smaller districts get alerts per box
        wait_until(lambda: supervisor.boxes_in_incidents() == a.boxes, 60, "boxes listed")
    incidents = store.db.query(
        "SELECT count(*) AS n FROM alerts WHERE type = 'district_outage' AND state != 'closed'"
    )[0]["n"]
    per_district = supervisor.messages_per_district(("device_offline", "district_outage"))
    return {
        "wills": a.boxes,
        "all_offline_s": round(settled, 2),
        "incidents": int(incidents),
        "alert_messages_per_district_max": max(per_district.values(), default=0),
        "alert_messages_total": sum(per_district.values()),
        "boxes_listed_in_incidents": supervisor.boxes_in_incidents(),
    }


def machine() -> str:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((x.split(":", 1)[1].strip() for x in info if x.startswith("model name")), "")
    py = platform.python_version()
    return f"{platform.machine()}, {os.cpu_count()} cores ({cpu}), Python {py}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--boxes", type=int, default=2000, help="Simulated boxes (half kitchens).")
    p.add_argument("--districts", type=int, default=10, help="Districts the sites are in.")
    p.add_argument("--steady-s", type=float, default=60, help="Length of the steady day.")
    p.add_argument("--backlog-s", type=float, default=3600, help="Outage length queued.")
    p.add_argument("--store", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--ingest-events", type=int, default=20_000, help="Events per ingest run.")
    p.add_argument("--ingest-runs", type=int, default=3, help="Ingest runs (median).")
    p.add_argument("--json", action="store_true", help="Print JSON only.")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="shian-city-") as tmp:
        pg = Postgres().start()  # in a folder of its own that the postgres user can enter
        try:
            result: dict[str, Any] = {"machine": machine(), "date": datetime.now().isoformat()}
            result["ingest"] = ingest.measure(pg.new_database, a.ingest_events, a.ingest_runs)
            result.update(run(a, Path(tmp), pg if a.store == "postgresql" else None))
        finally:
            pg.stop()
    goals = {
        "lost": result["lost"] == 0,
        "duplicates": result["duplicates"] == 0,
        "p99_ms<=500": (result["p99_ms"] or 1e9) <= 500,
        "storm_drain_s<=60": result["storm_drain_s"] <= 60,
        "collector_rss_mb<=500": result["collector_rss_mb"] <= 500,
    }
    result["goals_met"] = goals
    print(json.dumps(result, indent=None if a.json else 2, ensure_ascii=False))
    sys.exit(0 if all(goals.values()) else 1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
