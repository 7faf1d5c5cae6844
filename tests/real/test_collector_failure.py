"""If a part of the collector dies anyway, the process says so and exits non-zero (for systemd
to restart it) instead of staying up and storing nothing; and a store that refuses one message
for what is in it costs that message only."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from cloud.service import CloudService
from cloud.web import make_app
from shared.codec import batch_payload
from shared.config import MqttSettings
from shared.mqtt import make_client, protocols
from shared.webserver import WebServer
from tests.conftest import cloud_config, register, wait_for
from tests.support.mosquitto import Mosquitto
from tests.test_codec import event

pytestmark = pytest.mark.real


def publish(url: str, topic: str, payloads: list[bytes]) -> None:
    settings = MqttSettings(url=url)
    client = make_client(settings, "box-probe", protocols(settings)[0])
    client.connect(settings.host, settings.port)
    client.loop_start()
    for p in payloads:
        client.publish(topic, p, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_a_dead_writer_thread_stops_the_collector_with_exit_70(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    service = CloudService(cloud_config(tmp_path, mosquitto.url))
    register(service.store)

    def broken(*_: Any, **__: Any) -> Any:
        # Injected: no message reaches such a fault any more (test_hostile.py), so the test
        # puts one where only a bug could, to show what the process then does.
        raise SystemExit("injected fault in the writer")

    service.store.write = broken  # type: ignore[method-assign]
    codes: list[int] = []
    runner = threading.Thread(target=lambda: codes.append(service.run_forever()))
    runner.start()
    assert service.collector.connected.wait(10)
    assert service.collector.health() is None
    publish(mosquitto.url, "shian/v1/dev/d1/events", [batch_payload([event(1)])])
    runner.join(30)
    assert codes == [70], "exits non-zero for systemd to restart it"
    assert "writer thread died" in (service.collector.health() or "")


def test_the_health_endpoint_says_what_is_failing(tmp_path: Path) -> None:
    from cloud.store import Store

    failure: list[str] = []
    store = Store(tmp_path / "c.db")
    web = WebServer(
        make_app(store, tmp_path / "keys", health=lambda: failure[0] if failure else None),
        "127.0.0.1",
        0,
    )
    web.start()

    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{web.port}/healthz") as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    try:
        assert get() == (200, "ok")
        failure.append("writer thread died: SystemExit: boom")
        assert get() == (503, "failing: writer thread died: SystemExit: boom")
    finally:
        web.stop()
        store.close()


def test_a_message_the_store_refuses_is_its_own_dead_letter(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    """A batch the store refuses for what is in it is stored message by message; the one it
    still refuses becomes a dead letter and its neighbours are stored (before, the writer
    retried the whole batch for ever: nothing more was stored for any box)."""
    service = CloudService(cloud_config(tmp_path, mosquitto.url, batch_max_wait_s=0.5))
    register(service.store)
    poison = batch_payload([event(99, data='{"note": "poison"}')])
    real_write = service.store.write

    def write(events: list[Any], *rest: Any, **kw: Any) -> Any:
        if any(e.data.get("note") == "poison" for e in events):
            raise ValueError("injected: the store refuses this event")
        return real_write(events, *rest, **kw)

    service.store.write = write  # type: ignore[method-assign]
    service.start()
    try:
        assert service.collector.connected.wait(10)
        good = [batch_payload([event(n)]) for n in range(1, 6)]
        publish(mosquitto.url, "shian/v1/dev/d1/events", [*good[:2], poison, *good[2:]])
        wait_for(lambda: service.store.events.count() == 5, what="the five good events")
        wait_for(lambda: service.store.dead.list(), what="the poison's dead letter")
        (dead,) = service.store.dead.list()
        assert (
            dead["reason"].startswith("store: internal: ValueError") and dead["payload"] == poison
        )
        assert service.collector.health() is None
    finally:
        service.stop()
