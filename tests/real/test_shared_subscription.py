"""Two collectors share the load through `$share/...` on one database: each event once."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.service import CloudService
from edge.agent import Agent
from tests.conftest import cloud_config, edge_config, register, wait_for
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.real


def test_two_collectors_split_the_events(tmp_path: Path, mosquitto: Mosquitto) -> None:
    services = []
    for name in ("a", "b"):
        cfg = cloud_config(tmp_path, mosquitto.url, share_group="collectors")
        cfg.mqtt.client_id = f"collector-{name}"  # type: ignore[union-attr]
        services.append(CloudService(cfg))
    for i in range(4):
        register(services[0].store, f"box-{i}", "canteen-001")
    for s in services:
        s.start()
        assert s.collector.connected.wait(10)
    agents = [
        Agent(edge_config(tmp_path, mosquitto.url, device=f"box-{i}", sync={"batch_max_events": 5}))
        for i in range(4)
    ]
    try:
        for a in agents:
            a.start()
        for i in range(200):
            for a in agents:
                a.emit("test", {"n": i})
        wait_for(lambda: services[0].store.events.count() == 4 * 201, what="all events")
        wait_for(lambda: all(a.outbox.stats().depth == 0 for a in agents), what="confirmed")
    finally:
        for a in agents:
            a.stop()
        counts = [s.collector.counters["events"] for s in services]
        devices = services[0].store.devices.list()
        for s in services:
            s.stop()
    assert all(c > 0 for c in counts), f"both collectors took a share: {counts}"
    assert all(d["missing"] == 0 and d["events"] == 201 for d in devices)
