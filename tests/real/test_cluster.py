"""The province's broker run for real: three NATS nodes (JetStream and MQTT) started by the
tests, boxes failing over between nodes, collectors splitting one stream as a NATS queue
group on one PostgreSQL, and nodes and collectors SIGKILLed with boxes streaming: nothing
lost, nothing doubled, alerts still reaching supervisors. Recovery times are printed (the
benchmark, bench/province.py, measures them at scale)."""

from __future__ import annotations

import queue
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from pydantic import SecretStr

from cloud.config import CloudConfig
from cloud.service import CloudService
from cloud.store import Store
from edge.agent import Agent
from edge.config import EdgeConfig
from shared.codec import batch_payload, envelope_json
from shared.config import MqttSettings
from shared.ids import uuid7
from shared.mqtt import make_client
from tests.conftest import cloud_config, edge_config, register, wait_for
from tests.real.test_alerts_e2e import Supervisor
from tests.real.test_postgres_collectors import start_process
from tests.real.test_sync_e2e import Producer, assert_exactly_once, stored
from tests.support.nats import NatsCluster, nats_binary
from tests.test_alerts_engine import violation

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(nats_binary() is None, reason="nats-server is not installed"),
]


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    """A cluster of its own for each test: a node started again after one test's kill may
    still be catching its streams up (RAFT) when the next test kills another, and two of
    three nodes down is no quorum."""
    c = NatsCluster(tmp_path_factory.mktemp("nats")).start()
    yield c
    c.stop()


def collector(
    tmp_path: Path, cluster: NatsCluster, name: str, first: int, db: str = ""
) -> CloudConfig:
    urls = cluster.mqtt_urls
    cfg = cloud_config(tmp_path / name, urls[first], share_group="collectors",
                       intake_urls=cluster.nats_urls)  # fmt: skip
    assert cfg.mqtt is not None
    cfg.mqtt.client_id = f"collector-{name}"
    cfg.mqtt.failover_urls = [u for u in urls if u != urls[first]]
    if db:
        cfg.store.url = db
        cfg.store.snapshots_dir = tmp_path / "snapshots"
    return cfg


def box(tmp_path: Path, cluster: NatsCluster, device: str, first: int) -> EdgeConfig:
    urls = cluster.mqtt_urls
    # a box sends again what is unconfirmed after 2 s, doubling to 8 s (120 s by default):
    # what a dead node or collector held comes again within the tests' waits
    cfg = edge_config(tmp_path, urls[first], device=device, sync={"confirm_timeout_max_s": 8})
    cfg.mqtt.failover_urls = [u for u in urls if u != urls[first]]
    return cfg


def test_a_box_fails_over_when_its_node_is_killed(tmp_path: Path, cluster: NatsCluster) -> None:
    cloud = CloudService(collector(tmp_path, cluster, "a", first=0))
    register(cloud.store, "box-1", "canteen-001")
    cloud.start()
    assert cloud.collector.connected.wait(20)
    agent = Agent(box(tmp_path, cluster, "box-1", first=1))
    producer = Producer(agent.outbox, None, batch=5, every=0.05)  # until the box is back
    try:
        agent.start()
        producer.start()
        wait_for(lambda: cloud.store.events.count() > 300, what="stream under way")
        killed = time.monotonic()
        cluster.kill(1)  # the box's node
        # a node that led JetStream's streams dies: the others elect new leaders first (6-20 s
        # on a busy machine), so the waits are long; what the box took is printed
        wait_for(lambda: agent.sync.counters["sync_broker_moves"] >= 1, timeout=120,
                 what="the box moved")  # fmt: skip
        before = cloud.store.events.count()
        wait_for(lambda: cloud.store.events.count() > before + 50, timeout=120,
                 what="stream again")  # fmt: skip
        print(f"box failover: stream flowing again {time.monotonic() - killed:.2f} s after kill")
        made = producer.finish() + 1  # and the box's started event
        wait_for(lambda: cloud.store.events.count() >= made, timeout=180, what="every event")
        wait_for(lambda: agent.outbox.stats().depth == 0, timeout=120, what="all confirmed")
        assert_exactly_once(cloud.store, "box-1", made)
        assert agent.sync.brokers.url != cluster.mqtt_urls[1]
    finally:
        producer.finish()
        agent.stop()
        cloud.stop()


def test_two_collectors_split_one_stream(
    tmp_path: Path, cluster: NatsCluster, postgres_url: str
) -> None:
    services = [
        CloudService(collector(tmp_path, cluster, n, first=i, db=postgres_url))
        for i, n in enumerate(("a", "b"))
    ]
    for i in range(4):
        register(services[0].store, f"box-{i}", "canteen-001")
    for s in services:
        s.start()
        assert s.collector.connected.wait(20)
    agents = [Agent(box(tmp_path, cluster, f"box-{i}", first=i % 3)) for i in range(4)]
    try:
        for a in agents:
            a.start()
        for n in range(200):
            for a in agents:
                a.emit("test", {"n": n})
        wait_for(lambda: services[0].store.events.count() == 4 * 201, what="all events")
        wait_for(lambda: all(a.outbox.stats().depth == 0 for a in agents), what="confirmed")
        for i in range(4):
            assert_exactly_once(services[0].store, f"box-{i}", 201)
    finally:
        for a in agents:
            a.stop()
        counts = [s.collector.counters["events"] for s in services]
        for s in services:
            s.stop()
    assert all(c > 0 for c in counts), f"both collectors took a share: {counts}"
    assert sum(counts) == 4 * 201, f"each event stored by one collector: {counts}"


def test_kill_a_node_then_a_collector_with_boxes_streaming(
    tmp_path: Path, cluster: NatsCluster, postgres_url: str
) -> None:
    cfgs = {n: collector(tmp_path, cluster, n, first=i, db=postgres_url)
            for i, n in enumerate(("a", "b"))}  # fmt: skip
    store = Store(postgres_url, tmp_path / "snapshots")
    store.sites.set("canteen-001", "xianan")
    store.sites.add_supervisor("wang", "xianan")
    for i in range(3):
        register(store, f"box-{i}", "canteen-001", district="xianan")
    procs = {n: start_process(tmp_path, cfg, n) for n, cfg in cfgs.items()}
    phone: Supervisor | None = None
    agents = [Agent(box(tmp_path, cluster, f"box-{i}", first=i)) for i in range(3)]
    # boxes stream at 100 events/s each until the last kill is over: each phase sees a live
    # stream, however long an earlier one took on a busy machine
    producers = [Producer(a.outbox, None, batch=5, every=0.05) for a in agents]
    recovery: dict[str, float] = {}

    def flowing_again(since: float, devices: list[str]) -> float:
        """Until each of ``devices`` has 50 more events stored than now."""
        before = {d: stored(store, d) for d in devices}
        wait_for(lambda: all(stored(store, d) > n + 50 for d, n in before.items()),
                 timeout=180, what="stream again")  # fmt: skip
        return time.monotonic() - since

    try:
        phone = Supervisor(cluster.mqtt_urls[2], "xianan", protocol="3.1.1")  # NATS: 3.1.1
        for a, p in zip(agents, producers, strict=True):
            a.start()
            p.start()
        wait_for(lambda: store.events.count() > 500, timeout=60, what="stream under way")
        moved = agents[0].sync
        assert moved.brokers.url == cluster.mqtt_urls[0]
        t = time.monotonic()
        cluster.kill(0)  # box-0's node and collector a's
        wait_for(lambda: moved.brokers.url != cluster.mqtt_urls[0] and moved.connected,
                 timeout=120, what="box-0 on another node")  # fmt: skip
        recovery["node killed: its box on another node"] = time.monotonic() - t
        recovery["node killed: its box's stream again"] = flowing_again(t, ["box-0"])
        t = time.monotonic()
        procs["a"].send_signal(signal.SIGKILL)
        procs["a"].wait(10)
        everyone = [f"box-{i}" for i in range(3)]
        recovery["collector killed: every box's stream again"] = flowing_again(t, everyone)
        recovery["node restarted: current"] = cluster.restart(0)
        t = time.monotonic()
        procs["a"] = start_process(tmp_path, cfgs["a"], "a2")
        recovery["collector restarted: streams go on"] = flowing_again(t, everyone)
        made = [p.finish() for p in producers]
        t = time.monotonic()
        wait_for(lambda: store.events.count() >= sum(made) + 3, timeout=180, what="every event")
        wait_for(lambda: all(a.outbox.stats().depth == 0 for a in agents), timeout=120,
                 what="every event confirmed")  # fmt: skip
        recovery["after the last event: all confirmed"] = time.monotonic() - t
        t = time.monotonic()
        agents[0].emit("violation", violation("cam1"))  # box-0 is on another node now
        alert = wait_for(lambda: phone.latest(type="animal_in_kitchen"), what="the alert")
        recovery["alert to the supervisor"] = time.monotonic() - t
        assert alert["site"] == "canteen-001" and alert["state"] == "open"
    finally:
        for p in producers:
            p.finish()
        if phone is not None:
            phone.close()
        for a in agents:
            a.stop()
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(20)
    print("recovery (s):", {k: round(v, 2) for k, v in recovery.items()})
    for i in range(3):
        rows = store.db.query(
            "SELECT count(*) AS n FROM events WHERE device = ? AND kind = 'test'", (f"box-{i}",)
        )
        assert rows[0]["n"] == made[i], f"box-{i}: every test event once"
    assert all(d["missing"] == 0 for d in store.devices.list())
    store.close()


def _login(url: str, user: str, password: str) -> tuple[Any, queue.SimpleQueue[Any]]:
    s = MqttSettings(url=url, username=user, password=SecretStr(password))
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    c = make_client(s, f"{user}-{uuid7().hex[:6]}", MQTTProtocolVersion.MQTTv311)
    c.on_connect = lambda _c, _u, _f, rc, _p: q.put(("connack", rc))
    c.connect(s.host, s.port)
    c.loop_start()
    return c, q


def one_event(device: str) -> bytes:
    ts = "2026-12-01T00:00:00.000Z"
    body = envelope_json(
        event_id=str(uuid7()),
        device=device,
        site="canteen-001",
        seq=1,
        ts=ts,
        kind="test",
        data_json='{"n":1}',
    )
    return batch_payload([body])


def test_the_registry_s_users_and_their_subjects_on_the_cluster(tmp_path: Path) -> None:
    """The users shian-cloud writes for NATS (cloud.broker_nats) on a cluster of their own:
    a box publishes only its own topics (a publish for another box is dropped, never
    delivered), a wrong password is refused, a supervisor subscribes to his district's alerts
    and not another's."""
    from cloud.broker_files import BrokerFiles
    from cloud.registry import Identity

    files = BrokerFiles(tmp_path / "broker")
    pw = {"collector-a": "c-secret-1", "box-1": "b1-secret", "box-2": "b2-secret", "wang": "w-pw"}
    files.set_passwords(pw)
    boxes = [Identity(name=b, kind="device", role="kitchen", site="canteen-001", district="xianan")
             for b in ("box-1", "box-2")]  # fmt: skip
    sups = [Identity(name="wang", kind="supervisor", role="supervisor", district="xianan")]
    files.write_acl("collector-a", boxes, sups)
    (tmp_path / "nats").mkdir()
    probe = ("collector-a", pw["collector-a"])  # the readiness probe needs a user with a grant
    cluster = NatsCluster(tmp_path / "nats", auth_file=files.nats_users, probe_user=probe)
    cluster.start()
    try:
        cfg = collector(tmp_path, cluster, "a", first=0)
        assert cfg.mqtt is not None
        cfg.mqtt.username, cfg.mqtt.password = "collector-a", SecretStr(pw["collector-a"])
        cloud = CloudService(cfg)
        for b in boxes:
            register(cloud.store, b.name, "canteen-001")
        cloud.start()
        try:
            assert cloud.collector.connected.wait(20)
            c, q = _login(cluster.mqtt_urls[1], "box-1", pw["box-1"])
            assert not q.get(timeout=10)[1].is_failure
            # PUBACKed by NATS all the same (a violation it logs), and dropped
            c.publish("shian/v1/dev/box-2/events", one_event("box-2"), qos=1).wait_for_publish(10)
            c.publish("shian/v1/dev/box-1/events", one_event("box-1"), qos=1).wait_for_publish(10)
            wait_for(lambda: cloud.store.events.count() == 1, what="box-1's own event")
            assert cloud.collector.counters["messages"] == 1, "box-2's topic never reached it"
            assert cloud.store.dead.list() == []
            c.disconnect()
            c.loop_stop()
            c, q = _login(cluster.mqtt_urls[2], "box-1", "a guess")
            assert q.get(timeout=10)[1].is_failure, "a wrong password is refused"
            c.loop_stop()
            c, q = _login(cluster.mqtt_urls[0], "wang", pw["wang"])
            assert not q.get(timeout=10)[1].is_failure
            c.on_subscribe = lambda _c, _u, _m, codes, _p: q.put(("suback", codes))
            c.subscribe([("shian/v1/alerts/xianan/+", 0), ("shian/v1/alerts/chibi/+", 0)])
            codes = q.get(timeout=10)[1]
            assert [x.is_failure for x in codes] == [False, True], "his district's, not chibi's"
            c.disconnect()
            c.loop_stop()
        finally:
            cloud.stop()
    finally:
        cluster.stop()
