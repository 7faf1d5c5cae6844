"""The embedded default: amqtt in the collector, an agent that finds MQTT 3.1.1 by itself,
and the whole demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cloud.config import CloudConfig
from cloud.service import CloudService
from edge.agent import Agent
from tests.conftest import ROOT, edge_config, register, wait_for
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.real


def test_agent_falls_back_to_mqtt_311_on_the_embedded_broker(tmp_path: Path) -> None:
    port = free_port()
    cfg = CloudConfig.model_validate(
        {
            "embedded_broker": {"port": port},
            "store": {"path": str(tmp_path / "c.db")},
            "web": {"port": 0},
        }
    )
    service = CloudService(cfg)
    register(service.store, "kitchen-1", "canteen-001")
    service.start()
    agent = Agent(edge_config(tmp_path, f"mqtt://127.0.0.1:{port}", mqtt={"protocol": "auto"}))
    agent.start()
    try:
        for i in range(50):
            agent.emit("test", {"n": i})
        wait_for(lambda: service.store.events.count() == 51, what="51 events via amqtt")
        wait_for(lambda: agent.outbox.stats().depth == 0, what="confirmations via amqtt")
        assert agent.sync.protocol == 4  # MQTT 3.1.1
    finally:
        agent.stop()
        service.stop()


def test_demo_runs_and_proves_exactly_once(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloud.cli",
            "demo",
            "--seconds",
            "8",
            "--workdir",
            str(tmp_path / "demo"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every event made on a box is in the cloud exactly once" in out.stdout
    dead = next(line for line in out.stdout.splitlines() if line.startswith("dead letters: "))
    assert dead.startswith("dead letters: 3 (") and all(
        r in dead for r in ("not_json 1", "site_mismatch 1", "unknown_device 1")
    ), dead
    assert "the public page says genuine" in out.stdout
    assert "a good update applied, a broken one rolled back by the box itself" in out.stdout
