"""A box upgraded over a database the code made before numbered migrations: every event it
had not yet had confirmed reaches a real collector, each exactly once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from edge.agent import Agent
from tests.conftest import cloud_config, edge_config, running_cloud, wait_for
from tests.support.mosquitto import Mosquitto
from tests.test_box_schema import old_box

pytestmark = pytest.mark.real


def test_the_unconfirmed_events_of_an_old_database_are_sent_once(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    path = old_box(tmp_path)  # tmp_path/stall-7/outbox.db: 1-10 confirmed, 11-30 not
    # the fixture's events were queued 2025-11-24; a box keeps an unconfirmed event 60 days at
    # most (the collector looks that far back for a redelivery): queued today, here
    conn = sqlite3.connect(path)
    conn.execute("UPDATE outbox SET created = ?", (time.time(),))
    conn.commit()
    conn.close()
    cfg = edge_config(tmp_path, mosquitto.url, device="stall-7", site="market-huaxin-07")
    with running_cloud(
        cloud_config(tmp_path, mosquitto.url), "stall-7", "market-huaxin-07"
    ) as cloud:
        agent = Agent(cfg)
        agent.start()
        try:

            def seqs() -> list[int]:
                rows = cloud.store.db.query(
                    "SELECT seq FROM events WHERE device = 'stall-7' AND kind = 'test' ORDER BY seq"
                )
                return [int(r["seq"]) for r in rows]

            wait_for(lambda: len(seqs()) >= 20, what="the old database's unconfirmed events")
            wait_for(lambda: agent.outbox.stats().depth == 0, what="every event confirmed")
        finally:
            agent.stop()
        assert seqs() == list(range(11, 31))
