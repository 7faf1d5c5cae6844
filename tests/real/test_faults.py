"""Faults around the link: a collector database locked for longer than its busy timeout leaves
the collector's MQTT session up (so the broker keeps what it queued), and a box stopped while
it waits to reconnect still leaves its offline status."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cloud.config import CloudConfig
from cloud.service import CloudService
from edge.agent import Agent
from shared.codec import envelope_json
from shared.ids import uuid7
from tests.conftest import cloud_config, edge_config, running_cloud, wait_for
from tests.real.test_sync_e2e import assert_exactly_once, stored
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.real


@pytest.fixture
def cloud(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[CloudService]:
    # the lease is renewed every second, so the lock meets it
    with running_cloud(cloud_config(tmp_path, mosquitto.url, publisher_lease_s=3)) as service:
        yield service


def device(service: CloudService) -> dict[str, Any]:
    return next((d for d in service.store.devices.list() if d["device"] == "kitchen-1"), {})


def test_a_locked_collector_database_leaves_its_mqtt_session_up(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    agent.start()
    lock = sqlite3.connect(tmp_path / "cloud.db", isolation_level=None)
    try:
        wait_for(lambda: stored(cloud.store, "kitchen-1") == 1, what="device_started")
        lock.execute("BEGIN EXCLUSIVE")  # another program holds the database
        for n in range(20):
            agent.emit("test", {"note": "while the database is locked", "n": n})
        wait_for(
            lambda: cloud.collector.publisher.failing,
            timeout=60,
            what="the publisher to find the database locked past its busy timeout",
        )
        assert cloud.collector.connected.is_set()
        lock.execute("ROLLBACK")
        wait_for(lambda: stored(cloud.store, "kitchen-1") == 21, what="the events, once free")
        wait_for(lambda: cloud.collector.publisher.failing is None, what="alerts flowing again")
        assert cloud.collector.counters["sessions"] == 1, "the MQTT session never ended"
        agent.stop()
        assert_exactly_once(cloud.store, "kitchen-1", 21)
    finally:
        lock.close()
        agent.stop()


def test_a_stop_while_waiting_to_reconnect_leaves_an_offline_status(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    slow = {"backoff_initial_s": 30, "backoff_max_s": 60}  # it waits 15-30 s to reconnect
    agent = Agent(edge_config(tmp_path, mosquitto.url, mqtt=slow))
    agent.start()
    try:
        wait_for(lambda: device(cloud).get("state") == "online", what="the box online")
        sessions = cloud.collector.counters["sessions"]
        mosquitto.stop()  # a broker restart without persistence: no retained status survives
        mosquitto.start()
        wait_for(lambda: cloud.collector.counters["sessions"] > sessions, what="the collector back")
        assert agent.sync.connected is False, "the box is still waiting to reconnect"
    finally:
        agent.stop()  # during its backoff
    # (Mosquitto sent the box's will as it shut down; the stop comes after it, and wins)
    wait_for(lambda: device(cloud).get("state_reason") == "stop", what="the offline status")
    assert device(cloud)["state"] == "offline"


def test_while_the_collector_is_silent_each_resend_costs_one_window(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The broker takes and drops what nobody subscribed to; the box resends only its oldest
    window until the collector confirms, then everything else."""
    sync = {
        "confirm_timeout_s": 1,
        "confirm_timeout_max_s": 1,
        "batch_max_events": 10,
        "inflight_window": 4,
    }
    agent = Agent(edge_config(tmp_path, mosquitto.url, sync=sync))
    for n in range(1000):
        agent.outbox.enqueue("test", {"note": "backlog", "n": n})
    agent.start()
    try:
        c = agent.sync.counters
        wait_for(lambda: c["sync_resends"] >= 1, what="the first resend")
        first = c["sync_messages"]
        assert first >= 100, "the first session sent the whole backlog once"
        wait_for(lambda: c["sync_resends"] >= 4, what="three more resends")
        assert c["sync_messages"] - first <= 4 * 4 + 4, "a window (4 messages) per resend"
        with running_cloud(cloud_config(tmp_path, mosquitto.url)) as cloud:
            wait_for(lambda: stored(cloud.store, "kitchen-1") == 1001, what="all, once confirmed")
            agent.stop()
            assert_exactly_once(cloud.store, "kitchen-1", 1001)
    finally:
        agent.stop()


@contextmanager
def dropped_then_heard(
    agent: Agent, cfg: CloudConfig, n: int, acked: int, stored_total: int
) -> Iterator[CloudService]:
    """The box makes ``n`` events while no collector listens (the broker takes and drops
    them); then a collector returns, and its hello brings them within 20 s."""
    for i in range(n):
        agent.emit("test", {"note": "taken and dropped: nobody listens", "n": i})
    wait_for(lambda: agent.sync.counters["sync_acked_events"] >= acked, what="the PUBACKs")
    with running_cloud(cfg) as cloud:
        wait_for(
            lambda: stored(cloud.store, "kitchen-1") == stored_total,
            timeout=20,
            what="the dropped events, sent again on the collector's hello",
        )
        yield cloud


def test_a_broker_that_forgot_everything_is_refilled_when_the_collector_returns(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A broker restarted without persistence, the box back before the collector: what the box
    sends meanwhile is taken and dropped. The collector's hello makes the box send it again at
    once, not a confirmation timeout (a minute here) later."""
    cfg = cloud_config(tmp_path, mosquitto.url)
    agent = Agent(edge_config(tmp_path, mosquitto.url, sync={"confirm_timeout_s": 60}))
    with running_cloud(cfg) as cloud:
        agent.start()
        wait_for(lambda: stored(cloud.store, "kitchen-1") == 1, what="device_started")
    try:
        sessions = agent.sync.counters["sync_sessions"]
        mosquitto.stop()
        mosquitto.start()
        wait_for(lambda: agent.sync.counters["sync_sessions"] > sessions, what="the box back")
        with dropped_then_heard(agent, cfg, 30, acked=31, stored_total=31) as cloud:
            agent.stop()
            assert_exactly_once(cloud.store, "kitchen-1", 31)
    finally:
        agent.stop()


def test_events_the_collector_never_confirms_do_not_hold_up_new_ones(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """The oldest rows are of a kind this collector does not know (a box upgraded first): they
    become dead letters and are never confirmed, so every resend window is theirs. New events
    still flow."""
    sync = {"confirm_timeout_s": 1, "confirm_timeout_max_s": 1, "batch_max_events": 10}
    agent = Agent(edge_config(tmp_path, mosquitto.url, sync={**sync, "inflight_window": 4}))
    with agent.outbox.transaction() as conn:
        for seq in range(1, 61):
            body = envelope_json(
                event_id=str(uuid7()),
                device="kitchen-1",
                site="canteen-001",
                seq=seq,
                ts="2026-11-30T08:00:00.000Z",
                kind="future_kind",
                data_json="{}",
            )
            conn.execute(
                "INSERT INTO outbox (seq, id, kind, created, size, body) VALUES (?,?,?,?,?,?)",
                (seq, str(uuid7()), "future_kind", time.time(), len(body), body),
            )
    with running_cloud(cloud_config(tmp_path, mosquitto.url)) as cloud:
        agent.start()
        try:
            c = agent.sync.counters
            wait_for(lambda: c["sync_resends"] >= 2, what="resends of the unconfirmable head")
            for n in range(5):
                agent.emit("test", {"note": "made after the stuck head", "n": n})
            wait_for(lambda: stored(cloud.store, "kitchen-1") == 6, what="the new events")
        finally:
            agent.stop()


def test_a_box_restarted_too_hears_the_returning_collector(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A power cut takes the box and the broker: the box is back first, with no hello heard yet
    in this run; the collector's live hello still makes it send again at once."""
    cfg = cloud_config(tmp_path, mosquitto.url)
    box = edge_config(tmp_path, mosquitto.url, sync={"confirm_timeout_s": 60})
    with running_cloud(cfg) as cloud:
        first = Agent(box)
        first.start()
        wait_for(lambda: stored(cloud.store, "kitchen-1") == 1, what="device_started")
        first.stop()
    mosquitto.stop()
    mosquitto.start()
    agent = Agent(box)  # a new run: it has heard no collector
    agent.start()
    try:
        with dropped_then_heard(agent, cfg, 10, acked=11, stored_total=12):
            pass
    finally:
        agent.stop()
