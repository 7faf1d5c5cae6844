"""Each kind of bad payload, published on a real broker, lands in the dead-letter table and
the collector keeps serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.service import CloudService
from shared.codec import MAX_MESSAGE_BYTES, batch_payload
from shared.config import MqttSettings
from shared.mqtt import make_client, protocols
from tests.conftest import cloud_config, register, wait_for
from tests.support.mosquitto import Mosquitto
from tests.test_codec import event, obj

pytestmark = pytest.mark.real

DEV = "shian/v1/dev/d1/events"


def one(o: object) -> bytes:
    return json.dumps({"v": 1, "events": [o]}).encode()


BAD = [
    (DEV, b"\x00\x01 not json", "not_json"),
    (DEV, b'{"v": 1, "events": "nope"}', "schema"),
    (DEV, b"[" + b" " * MAX_MESSAGE_BYTES + b"]", "oversize"),
    (DEV, one(obj(kind="rat_party")), "unknown_kind"),
    (DEV, one(obj(v=2)), "schema_version"),
    (DEV, b'{"v": 2, "events": []}', "schema_version"),
    ("shian/v1/dev/d2/events", batch_payload([event(1, device="d1")]), "device_mismatch"),
    (
        "shian/v1/dev/d2/status",
        b'{"v":1,"device":"d1","site":"s","state":"online","ts":"2026-11-26T00:00:00Z"}',
        "device_mismatch",
    ),
    ("shian/v1/dev/d1/status", b'{"v":1,"state":"sleepy"}', "schema"),
]


def test_every_bad_payload_is_dead_lettered_and_service_goes_on(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    service = CloudService(cloud_config(tmp_path, mosquitto.url))
    register(service.store, "d1", "s1")
    register(service.store, "d2", "s1")
    service.start()
    assert service.collector.connected.wait(10)
    settings = MqttSettings(url=mosquitto.url)
    client = make_client(settings, "prankster", protocols(settings)[0])
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        for topic, payload, _ in BAD:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        client.publish(DEV, batch_payload([event(1)]), qos=1).wait_for_publish(5)
        wait_for(lambda: service.store.events.count() == 1, what="the good event after the bad")
        wait_for(lambda: len(service.store.dead.list()) == len(BAD), what="all dead letters")
        rows = sorted(service.store.dead.list(), key=lambda r: r["id"])
    finally:
        client.disconnect()
        client.loop_stop()
        service.stop()
    assert [r["reason"].split(":")[0] for r in rows] == [c for _, _, c in BAD]
    assert [r["topic"] for r in rows] == [t for t, _, _ in BAD]
    assert rows[0]["payload"] == BAD[0][1], "raw bytes are kept as they came"
    assert all(r["received"] > 0 for r in rows)
