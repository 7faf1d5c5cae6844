"""TLS and username/password from config, against a real Mosquitto with TLS and a password file."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.config import CloudConfig
from cloud.service import CloudService
from edge.agent import Agent
from tests.conftest import edge_config, register, wait_for
from tests.support.mosquitto import Mosquitto, find_mosquitto
from tests.support.tls import add_user, make_pki

pytestmark = pytest.mark.real


@pytest.fixture
def secure_broker(tmp_path: Path) -> Mosquitto:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    pki = make_pki(tmp_path / "pki")
    passwords = tmp_path / "passwd"
    add_user(passwords, "kitchen-1", "k1-secret")
    add_user(passwords, "collector", "c-secret")
    broker = Mosquitto(
        tmp_path / "mosquitto",
        anonymous=False,
        listener=f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}",
        extra=f"password_file {passwords}",
    )
    broker.pki = pki  # type: ignore[attr-defined]
    broker.start()
    yield broker
    broker.stop()


def test_tls_with_password_from_a_credential_file(
    tmp_path: Path, secure_broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"mqtts://127.0.0.1:{secure_broker.port}"
    ca = str(secure_broker.pki.ca)  # type: ignore[attr-defined]
    cred = tmp_path / "mqtt_password"
    cred.write_text("k1-secret\n")
    cloud = CloudService(
        CloudConfig.model_validate(
            {
                "mqtt": {
                    "url": url,
                    "ca_file": ca,
                    "username": "collector",
                    "password": "c-secret",
                },
                "store": {"path": str(tmp_path / "c.db")},
            }
        )
    )
    register(cloud.store, "kitchen-1", "canteen-001")
    cloud.start()
    agent = Agent(
        edge_config(
            tmp_path, url, mqtt={"ca_file": ca, "username": "kitchen-1", "password_file": str(cred)}
        )
    )
    agent.start()
    try:
        assert cloud.collector.connected.wait(10)
        agent.emit("test", {"note": "over TLS"})
        wait_for(lambda: cloud.store.events.count() == 2, what="events over TLS")
        wait_for(lambda: agent.outbox.stats().depth == 0, what="confirmation over TLS")
    finally:
        agent.stop()
        cloud.stop()


def test_a_wrong_password_is_refused_and_nothing_is_lost(
    tmp_path: Path, secure_broker: Mosquitto
) -> None:
    url = f"mqtts://127.0.0.1:{secure_broker.port}"
    ca = str(secure_broker.pki.ca)  # type: ignore[attr-defined]
    agent = Agent(
        edge_config(
            tmp_path, url, mqtt={"ca_file": ca, "username": "kitchen-1", "password": "wrong"}
        )
    )
    agent.start()
    try:
        agent.emit("test", {"note": "kept"})
        wait_for(lambda: agent.sync.counters["sync_connect_failures"] >= 2, what="refusals")
        assert agent.sync.counters["sync_sessions"] == 0
        assert agent.outbox.stats().depth == 2, "the events wait in the outbox"
    finally:
        agent.stop()


def test_an_unknown_ca_is_refused(tmp_path: Path, secure_broker: Mosquitto) -> None:
    other = make_pki(tmp_path / "other")
    url = f"mqtts://127.0.0.1:{secure_broker.port}"
    agent = Agent(
        edge_config(
            tmp_path,
            url,
            mqtt={"ca_file": str(other.ca), "username": "kitchen-1", "password": "k1-secret"},
        )
    )
    agent.start()
    try:
        wait_for(lambda: agent.sync.counters["sync_connect_failures"] >= 1, what="TLS refusal")
        assert agent.sync.counters["sync_sessions"] == 0
    finally:
        agent.stop()
