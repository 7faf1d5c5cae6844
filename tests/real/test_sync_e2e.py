"""End to end through a real Mosquitto: nothing lost, nothing doubled, whatever fails."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.service import CloudService
from cloud.store import Store
from edge.agent import Agent
from edge.store.outbox import Outbox
from tests.conftest import (
    cloud_config,
    edge_config,
    register,
    running_cloud,
    spawn,
    wait_for,
    write_toml,
)
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.real


def assert_exactly_once(store: Store, device: str, expected: int) -> None:
    rows = store.db.query("SELECT id, seq FROM events WHERE device = ?", (device,))
    seqs = sorted(r["seq"] for r in rows)
    assert len({r["id"] for r in rows}) == len(rows) == expected
    assert seqs == list(range(1, expected + 1)), "every sequence number once, no gaps"
    dev = next(d for d in store.devices.list() if d["device"] == device)
    assert dev["missing"] == 0 and dev["events"] == expected


def stored(store: Store, device: str) -> int:
    rows = store.db.query("SELECT count(*) AS n FROM events WHERE device = ?", (device,))
    return int(rows[0]["n"])


class Producer(threading.Thread):
    """Queues ``total`` test events into an outbox file in small committed batches; with no
    total, until ``finish()``. ``produced`` counts what is queued."""

    def __init__(
        self, outbox: Outbox, total: int | None, batch: int = 10, every: float = 0.005
    ) -> None:
        super().__init__(daemon=True)
        self.outbox, self.total, self.batch, self.every = outbox, total, batch, every
        self.done, self.halt = threading.Event(), threading.Event()
        self.produced = 0

    def finish(self) -> int:
        """Stop and return how many events were queued."""
        self.halt.set()
        self.join()
        return self.produced

    def run(self) -> None:
        total = self.total
        while (total is None or self.produced < total) and not self.halt.is_set():
            k = self.batch if total is None else min(self.batch, total - self.produced)
            n = self.produced
            self.outbox.enqueue_many([("test", {"n": n + i}, None) for i in range(k)])
            self.produced += k
            self.halt.wait(self.every)
        self.done.set()


@pytest.fixture
def cloud(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[CloudService]:
    with running_cloud(cloud_config(tmp_path, mosquitto.url)) as service:
        yield service


def test_events_arrive_once_over_mqtt5(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    agent.start()
    try:
        for i in range(500):
            agent.emit("test", {"note": "hello", "n": i})
        wait_for(lambda: stored(cloud.store, "kitchen-1") >= 501, what="501 events in the cloud")
        wait_for(lambda: agent.outbox.stats().depth == 0, what="outbox confirmed empty")
        assert agent.sync.protocol == 5, "Mosquitto speaks MQTT 5, so the agent uses it"
        assert agent.sync.counters["sync_messages"] < 501, "events travel in batches"
    finally:
        agent.stop()
    assert_exactly_once(cloud.store, "kitchen-1", 501)
    wait_for(
        lambda: cloud.store.devices.list()[0]["state"] == "offline", what="offline status at stop"
    )
    assert cloud.store.devices.list()[0]["state_reason"] == "stop"


def test_broker_restart_midstream_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    agent.start()
    producer = Producer(agent.outbox, 3000)
    producer.start()
    try:
        wait_for(lambda: stored(cloud.store, "kitchen-1") > 800, what="stream under way")
        mosquitto.stop()  # persistence is off: the broker forgets every session and queue
        mosquitto.start()
        producer.done.wait(60)
        wait_for(
            lambda: stored(cloud.store, "kitchen-1") >= 3001,
            timeout=60,
            what="all 3001 events after the broker restart",
        )
        wait_for(lambda: agent.outbox.stats().depth == 0, what="everything confirmed")
    finally:
        agent.stop()
    assert agent.sync.counters["sync_sessions"] >= 2
    assert_exactly_once(cloud.store, "kitchen-1", 3001)


def test_edge_killed_midstream_resends_after_restart(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    cfg = edge_config(tmp_path, mosquitto.url)
    conf = write_toml(
        tmp_path / "edge.toml",
        cfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )
    outbox = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    proc = spawn("edge.cli", "run", "--config", str(conf), log=tmp_path / "edge.log")
    producer = Producer(outbox, 2000)
    producer.start()
    try:
        wait_for(lambda: stored(cloud.store, "kitchen-1") > 500, what="stream under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # the killed agent's last will marks it offline
        wait_for(lambda: cloud.store.devices.list()[0]["state_reason"] == "will", what="last will")
        proc = spawn("edge.cli", "run", "--config", str(conf), log=tmp_path / "edge.log")
        producer.done.wait(60)
        # two device_started events: one per agent start
        wait_for(
            lambda: stored(cloud.store, "kitchen-1") >= 2002,
            timeout=60,
            what="all events after the agent restart",
        )
        wait_for(lambda: outbox.stats().depth == 0, what="everything confirmed")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert_exactly_once(cloud.store, "kitchen-1", 2002)
    outbox.close()


def test_collector_killed_midstream_loses_nothing(tmp_path: Path, mosquitto: Mosquitto) -> None:
    ccfg = cloud_config(tmp_path, mosquitto.url)
    conf = write_toml(
        tmp_path / "cloud.toml",
        ccfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )
    proc = spawn("cloud.cli", "run", "--config", str(conf), log=tmp_path / "cloud.log")
    wait_for(lambda: ccfg.store.path.exists(), what="collector database")
    store = Store(ccfg.store.path)
    register(store, "kitchen-1", "canteen-001")
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    agent.start()
    producer = Producer(agent.outbox, 3000)
    producer.start()
    try:
        wait_for(lambda: stored(store, "kitchen-1") > 800, what="stream under way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = spawn("cloud.cli", "run", "--config", str(conf), log=tmp_path / "cloud.log")
        producer.done.wait(60)
        wait_for(
            lambda: stored(store, "kitchen-1") >= 3001,
            timeout=60,
            what="all events after the collector restart",
        )
        wait_for(lambda: agent.outbox.stats().depth == 0, what="everything confirmed")
    finally:
        agent.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert_exactly_once(store, "kitchen-1", 3001)
    store.close()


def test_heartbeat_reports_outbox_and_counters(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    agent = Agent(edge_config(tmp_path, mosquitto.url, sync={"heartbeat_s": 1}))
    agent.start()
    try:

        def heartbeat() -> dict | None:
            devs = cloud.store.devices.list()
            st = devs[0]["last_status"] if devs else None
            return st if st and st["state"] == "online" and "outbox" in st else None

        st = wait_for(heartbeat, what="an online heartbeat")
        assert st["device"] == "kitchen-1" and st["version"]
        assert set(st["outbox"]) >= {"depth", "oldest_age_s", "dropped", "rejected", "policy"}
        assert "sync_messages" in st["counters"]
    finally:
        agent.stop()
