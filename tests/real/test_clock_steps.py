"""A box's clock is stepped (NTP, or by hand): nothing is lost or held, the cloud keeps the box's
state right, and a clock off by more than the limit is an alert, closed when it is put right.
The agent is given a wall clock the test steps; the collector and broker are real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cloud.config import CloudConfig
from cloud.service import CloudService
from edge.agent import Agent
from edge.config import EdgeConfig
from tests.conftest import cloud_config, edge_config, running_cloud, wait_for
from tests.real.test_sync_e2e import assert_exactly_once, stored
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.real

HOURS_2 = 7200.0


class SteppedClock:
    """The box's wall clock: the real one plus an offset the test sets."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def config(tmp_path: Path, url: str) -> CloudConfig:
    cfg = cloud_config(tmp_path, url)
    cfg.alerts.clock_settle_s = 0  # judge a slow clock at once (no backlog here)
    return cfg


def box(tmp_path: Path, url: str) -> EdgeConfig:
    return edge_config(tmp_path, url, sync={"confirm_timeout_max_s": 4})


@pytest.fixture
def cloud(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[CloudService]:
    with running_cloud(config(tmp_path, mosquitto.url)) as service:
        yield service


def device(service: CloudService) -> dict[str, Any]:
    return next(d for d in service.store.devices.list() if d["device"] == "kitchen-1")


def skew_alerts(service: CloudService, state: str = "open") -> list[dict[str, Any]]:
    return [
        a
        for a in service.store.alerts.list()
        if a["type"] == "clock_skew" and (a["state"] != "closed") == (state == "open")
    ]


def test_a_box_two_hours_fast_is_stored_as_received_and_alerted_until_put_right(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    clock = SteppedClock(+HOURS_2)
    agent = Agent(box(tmp_path, mosquitto.url), clock=clock)
    agent.start()
    try:
        for n in range(5):
            agent.emit("test", {"note": "from a fast clock", "n": n})
        wait_for(lambda: stored(cloud.store, "kitchen-1") == 6, what="the events")
        for e in cloud.store.events.list(device="kitchen-1"):
            ahead = datetime.fromisoformat(e["ts"]).timestamp() - e["received"]
            assert HOURS_2 - 60 < ahead < HOURS_2 + 60, "its time kept, the receive time beside"
        (alert,) = wait_for(lambda: skew_alerts(cloud), what="a clock_skew alert")
        assert "ahead of" in alert["title"]
        clock.offset = 0.0  # NTP puts it right
        wait_for(lambda: skew_alerts(cloud, "closed"), what="the alert closed by the next status")
        assert device(cloud)["state"] == "online"
    finally:
        agent.stop()
    wait_for(lambda: device(cloud)["state"] == "offline", what="the clean stop, after the step")
    assert device(cloud)["state_reason"] == "stop"
    assert_exactly_once(cloud.store, "kitchen-1", 6)


def test_a_backward_step_holds_nothing_the_broker_lost_and_keeps_the_box_state(
    tmp_path: Path, mosquitto: Mosquitto, cloud: CloudService
) -> None:
    clock = SteppedClock()
    agent = Agent(box(tmp_path, mosquitto.url), clock=clock)
    agent.start()
    restarted: CloudService | None = None
    try:
        for n in range(10):
            agent.emit("test", {"note": "before", "n": n})
        wait_for(lambda: stored(cloud.store, "kitchen-1") == 11, what="the first events")
        cloud.stop()  # the collector is away; the broker queues for its session
        for n in range(20):
            agent.emit("test", {"note": "while the collector is away", "n": n})
        acked = agent.sync.counters
        wait_for(lambda: acked["sync_acked_events"] >= 31, what="the broker's PUBACKs")
        sessions = acked["sync_sessions"]
        mosquitto.stop()  # no persistence: it forgets what it acknowledged
        mosquitto.start()
        wait_for(lambda: acked["sync_sessions"] > sessions, what="the box back on the broker")
        clock.offset = -HOURS_2  # the clock is stepped back two hours
        restarted = CloudService(config(tmp_path, mosquitto.url))
        restarted.start()
        assert restarted.collector.connected.wait(10)
        wait_for(
            lambda: stored(restarted.store, "kitchen-1") == 31,
            timeout=30,
            what="what the broker lost, sent again within the confirmation timeout",
        )
        wait_for(
            lambda: (device(restarted)["clock_skew_s"] or 0) < -HOURS_2 + 60,
            what="a heartbeat stamped two hours back, applied",
        )
        assert device(restarted)["state"] == "online"
        (alert,) = wait_for(lambda: skew_alerts(restarted), what="a clock_skew alert")
        assert "behind" in alert["title"]
        agent.stop()
        wait_for(lambda: device(restarted)["state_reason"] == "stop", what="the clean stop")
        assert_exactly_once(restarted.store, "kitchen-1", 31)
    finally:
        agent.stop()
        if restarted is not None:
            restarted.stop()
