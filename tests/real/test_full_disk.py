"""A box's card fills: on a real small filesystem (a tmpfs the test fills with a file), the agent
starts and runs, sends its backlog, refuses new events with a count the cloud sees (status and
alert), keeps its one MQTT session, and takes events again once space returns. The write-ahead
log alone never fills the card."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.service import CloudService
from edge.agent import Agent
from edge.config import OutboxSettings
from edge.store.outbox import Outbox, OutboxFull
from tests.conftest import cloud_config, edge_config, register, wait_for
from tests.real.test_sync_e2e import assert_exactly_once, stored
from tests.support.mosquitto import Mosquitto
from tests.support.smalldisk import SmallDisk

pytestmark = pytest.mark.real


@pytest.fixture
def card(tmp_path: Path) -> Iterator[SmallDisk]:
    disk = SmallDisk(tmp_path / "card", size_mb=4)
    why = disk.mount()
    if why:
        pytest.skip(why)
    yield disk
    disk.unmount()


def test_the_write_ahead_log_alone_cannot_fill_the_card(card: SmallDisk) -> None:
    limit = 256 * 1024
    outbox = Outbox(card.path / "box.db", "d1", "s1", OutboxSettings(wal_max_bytes=limit))
    queued = 0
    with pytest.raises(OutboxFull, match="disk full"):
        while True:
            outbox.enqueue("test", {"note": "x" * 200, "n": queued})
            queued += 1
    wal = (card.path / "box.db-wal").stat().st_size
    db = (card.path / "box.db").stat().st_size
    assert wal <= limit, f"write-ahead log {wal} bytes, bound {limit}"
    assert db > 8 * wal, "the card holds events, not log"
    assert outbox.stats().disk_full and outbox.stats().rejected == 1
    outbox.close()


def _outbox_of(service: CloudService, device: str) -> dict[str, Any]:
    dev = next((d for d in service.store.devices.list() if d["device"] == device), None)
    return ((dev or {}).get("last_status") or {}).get("outbox") or {}


def test_an_agent_started_on_a_full_disk_runs_and_reports_it(
    tmp_path: Path, card: SmallDisk, mosquitto: Mosquitto
) -> None:
    cfg = edge_config(tmp_path, mosquitto.url, data_dir=str(card.path / "kitchen-1"))
    backlog = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    for n in range(300):
        backlog.enqueue("test", {"note": "made before the card filled", "n": n})
    backlog.close()
    card.fill()
    cloud = CloudService(cloud_config(tmp_path, mosquitto.url))
    register(cloud.store, "kitchen-1", "canteen-001")
    cloud.start()
    assert cloud.collector.connected.wait(10)
    agent = Agent(cfg)  # opens: the database's reserve of space is given up for it
    agent.start()  # it used to exit here: device_started could not be queued
    try:
        wait_for(lambda: stored(cloud.store, "kitchen-1") >= 300, what="the backlog, sent")
        refused = 0
        for n in range(5000):  # whatever else runs on the box takes each page freed
            card.fill()
            try:
                agent.emit("test", {"note": "made while the card fills", "n": 300 + n})
            except OutboxFull:
                refused += 1
                break
        assert refused, "the card never filled"
        made = agent.outbox.last_seq()  # queued so far (the refused event has no number)
        wait_for(
            lambda: (
                _outbox_of(cloud, "kitchen-1").get("disk_full")
                and _outbox_of(cloud, "kitchen-1").get("rejected", 0) >= 1
            ),
            what="the refusals counted in a heartbeat",
        )
        (alert,) = [a for a in cloud.store.alerts.list() if a["type"] == "outbox_overflow"]
        assert "disk full" in alert["title"] and "refused" in alert["title"]
        assert agent.sync.counters["sync_sessions"] == 1, "the full disk did not end the session"
        card.free()
        agent.emit("test", {"note": "space again", "n": -1})
        wait_for(lambda: stored(cloud.store, "kitchen-1") == made + 1, what="the new event")
        wait_for(lambda: agent.outbox.stats().depth == 0, timeout=40, what="all confirmed")
        assert not agent.outbox.stats().disk_full
        agent.stop()
        assert_exactly_once(cloud.store, "kitchen-1", made + 1)  # with device_started
    finally:
        agent.stop()
        cloud.stop()


@pytest.mark.parametrize("reserve", [0, 1024 * 1024])
def test_a_quiet_box_says_the_disk_has_room_again(card: SmallDisk, reserve: int) -> None:
    """No event need be queued for the heartbeat to stop saying disk_full once the card has
    room: the outbox's maintenance finds it (by the reserve taken back, or a small probe)."""
    settings = OutboxSettings(reserve_bytes=reserve)
    outbox = Outbox(card.path / "box.db", "d1", "s1", settings)
    outbox.enqueue("test", {"n": 0})
    card.fill()
    with pytest.raises(OutboxFull):
        for n in range(10_000):
            card.fill()
            outbox.enqueue("test", {"note": "x" * 500, "n": n})
    assert outbox.stats().disk_full
    with contextlib.suppress(sqlite3.OperationalError):  # (the sync loop retries it later)
        outbox.maintain()
    assert outbox.stats().disk_full, "still full"
    card.free()
    outbox.maintain()
    assert not outbox.stats().disk_full
    outbox.close()
