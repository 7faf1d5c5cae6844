"""Several collectors on one PostgreSQL, sharing the load through `$share/...` on a real
Mosquitto: a collector killed mid-stream loses nothing, and sequence gaps stay right when one
device's messages reach two collectors."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from cloud.config import CloudConfig
from cloud.service import CloudService
from cloud.store import Store
from edge.agent import Agent
from shared.codec import batch_payload
from shared.config import MqttSettings
from shared.mqtt import make_client, protocols
from tests.conftest import cloud_config, edge_config, register, spawn, wait_for, write_toml
from tests.real.test_alerts_e2e import Supervisor
from tests.real.test_sync_e2e import Producer, assert_exactly_once
from tests.support.mosquitto import Mosquitto
from tests.support.postgres import Postgres
from tests.test_codec import event

pytestmark = pytest.mark.real


def pg_config(tmp_path: Path, url: str, db: str, name: str) -> CloudConfig:
    cfg = cloud_config(tmp_path / name, url, share_group="collectors")
    cfg.mqtt.client_id = f"collector-{name}"  # type: ignore[union-attr]
    cfg.store.url = db
    cfg.store.snapshots_dir = tmp_path / "snapshots"
    return cfg


def start_process(tmp_path: Path, cfg: CloudConfig, name: str) -> Any:
    conf = write_toml(
        tmp_path / f"{name}.toml",
        cfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )
    return spawn("cloud.cli", "run", "--config", str(conf), log=tmp_path / f"{name}.log")


def test_a_collector_killed_midstream_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    procs = {n: start_process(tmp_path, pg_config(tmp_path, mosquitto.url, postgres_url, n), n)
             for n in ("a", "b")}  # fmt: skip
    store = Store(postgres_url, tmp_path / "snapshots")
    for i in range(3):
        register(store, f"box-{i}", "canteen-001")
    agents = [Agent(edge_config(tmp_path, mosquitto.url, device=f"box-{i}")) for i in range(3)]
    producers = [Producer(a.outbox, 1500) for a in agents]
    try:
        for a, p in zip(agents, producers, strict=True):
            a.start()
            p.start()
        wait_for(lambda: store.events.count() > 1000, what="stream under way")
        procs["a"].send_signal(signal.SIGKILL)
        procs["a"].wait(10)
        for p in producers:
            p.done.wait(60)
        wait_for(lambda: store.events.count() >= 3 * 1501, timeout=90, what="every event")
        wait_for(lambda: all(a.outbox.stats().depth == 0 for a in agents), what="confirmed")
    finally:
        for a in agents:
            a.stop()
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    for i in range(3):
        assert_exactly_once(store, f"box-{i}", 1501)
    assert all(d["missing"] == 0 for d in store.devices.list())


def test_gaps_stay_right_when_one_device_reaches_two_collectors(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    services = [CloudService(pg_config(tmp_path, mosquitto.url, postgres_url, n)) for n in "ab"]
    register(services[0].store, "gappy", "s1")
    for s in services:
        s.start()
        assert s.collector.connected.wait(10)
    settings = MqttSettings(url=mosquitto.url, client_id="gappy")
    client = make_client(settings, "gappy", protocols(settings)[0], clean=True)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    missing = set(range(50, 60)) | {120}
    try:
        infos = [
            client.publish("shian/v1/dev/gappy/events", batch_payload([event(seq, "gappy")]), qos=1)
            for seq in range(1, 201)
            if seq not in missing
        ]
        for info in infos:
            info.wait_for_publish(10)
        store = services[0].store
        wait_for(lambda: store.events.count() == 200 - len(missing), what="the events")
        (dev,) = store.devices.list()
        assert dev["gaps"] == [[50, 59], [120, 120]] and dev["missing"] == 11
        assert all(s.collector.counters["events"] > 0 for s in services), "both took a share"
        for seq in sorted(missing):  # the missing ones arrive late: the gaps close
            client.publish(
                "shian/v1/dev/gappy/events", batch_payload([event(seq, "gappy")]), qos=1
            ).wait_for_publish(10)
        wait_for(lambda: store.devices.list()[0]["missing"] == 0, what="gaps closed")
        assert store.devices.list()[0]["events"] == 200
    finally:
        client.loop_stop()
        client.disconnect()
        for s in services:
            s.stop()


def test_a_database_outage_loses_nothing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """PostgreSQL stops mid-stream and comes back: the collector keeps the messages it could
    not write unacknowledged, retries, and every event is stored once."""
    server = Postgres().start()  # its own, to stop: a folder the postgres user can enter
    try:
        service = CloudService(pg_config(tmp_path, mosquitto.url, server.new_database(), "a"))
        register(service.store, "box-0", "canteen-001")
        service.start()
        assert service.collector.connected.wait(10)
        agent = Agent(edge_config(tmp_path, mosquitto.url, device="box-0"))
        agent.start()
        producer = Producer(agent.outbox, 1500, batch=5, every=0.02)  # about 6 s of events
        try:
            producer.start()
            wait_for(lambda: service.store.events.count() > 100, what="stream under way")
            server.halt()
            producer.done.wait(60)
            assert agent.outbox.stats().depth > 0, "events wait on the box while the store is down"
            server.start()
            wait_for(lambda: service.store.events.count() >= 1501, timeout=90, what="every event")
            wait_for(lambda: agent.outbox.stats().depth == 0, what="confirmed")
        finally:
            agent.stop()
            service.stop()
        store = Store(service.cfg.store.url, tmp_path / "snapshots")
        assert_exactly_once(store, "box-0", 1501)
        store.close()
    finally:
        server.stop()


def test_two_collectors_publish_each_alert_change_once(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    """One of the group holds the publisher lease; when it stops, the other takes over."""
    cfgs = [pg_config(tmp_path, mosquitto.url, postgres_url, n) for n in "ab"]
    for cfg in cfgs:
        cfg.collector.publisher_lease_s = 1.0
    services = [CloudService(cfg) for cfg in cfgs]
    for s in services:
        s.start()
        assert s.collector.connected.wait(10)
    services[0].store.sites.set("s1", "xianan")
    register(services[0].store, "k1", "s1", district="xianan")
    phone = Supervisor(mosquitto.url, "xianan")
    settings = MqttSettings(url=mosquitto.url, client_id="k1")
    client = make_client(settings, "k1", protocols(settings)[0], clean=True)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()

    def violation(seq: int, camera: str) -> bytes:
        data = (
            f'{{"camera":"{camera}","type":"no_mask","label":"face","score":0.9,'
            '"box":[1,2,3,4],"frame":[640,360],"model":"m"}'
        )
        return batch_payload([event(seq, "k1", kind="violation", data=data)])

    try:
        for seq in range(1, 21):  # 10 cameras, 2 violations each, one message each
            client.publish("shian/v1/dev/k1/events", violation(seq, f"cam{seq % 10}"), qos=1)
        wait_for(lambda: len({m["id"] for _, m in phone.messages()}) == 10, what="10 alerts")
        wait_for(lambda: sum(m["count"] == 2 for _, m in phone.messages()) == 10, what="repeats")
        sent = [(m["id"], m["version"]) for _, m in phone.messages()]
        assert len(sent) == len(set(sent)), "each change published by one collector only"
        holder = next(s for s in services if s.collector.publisher._is_publisher)
        holder.stop()
        services.remove(holder)
        client.publish("shian/v1/dev/k1/events", violation(21, "cam-late"), qos=1)
        wait_for(
            lambda: any(m["source"] == "cam-late" for _, m in phone.messages()),
            what="the other collector takes over publishing",
        )
    finally:
        client.loop_stop()
        client.disconnect()
        phone.close()
        for s in services:
            s.stop()
