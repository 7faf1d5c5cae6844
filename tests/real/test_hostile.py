"""A hostile corpus against a collector on a real Mosquitto: numbers, nesting, encodings,
types, sizes, mixed batches, odd topics, boxes claiming what is not theirs. Then good events:
every good one stored once, every bad one a dead letter with its reason, the collector up and
healthy throughout, and a message sent again counted, not looped on."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from cloud.service import CloudService
from shared.codec import batch_payload
from shared.config import MqttSettings
from shared.ids import uuid7
from shared.mqtt import make_client, protocols
from shared.signing import new_key, new_ticket_id
from tests.conftest import cloud_config, register, wait_for
from tests.support.mosquitto import Mosquitto
from tests.support.tickets import signed_ticket
from tests.test_codec import event, raw_event

pytestmark = pytest.mark.real

EV = "shian/v1/dev/d1/events"


def jpeg(color: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (color, 0, 0)).save(buf, "JPEG")
    return buf.getvalue()


def ticket(device: str, ticket_id: str, stall: str, site: str = "m1") -> str:
    t = signed_ticket(new_key(), ticket_id=ticket_id, stall=stall)
    return raw_event(1, json.dumps(t, ensure_ascii=False), device=device, site=site, kind="ticket")


@dataclass
class Corpus:
    first: list[tuple[str, bytes]]
    """What is taken first: a snapshot id and a ticket id others then claim."""
    bad: list[tuple[str, bytes, str]]
    """(topic, payload, the reason's category) of every hostile message."""


def corpus() -> Corpus:
    snap_a = str(uuid7())
    deep_list = b"[" * 100_000 + b"]" * 100_000
    deep_data = '{"a":' * 40 + "1" + "}" * 40
    sid = new_ticket_id()
    status = {"v": 1, "device": "ghost", "site": "s1", "state": "online"}
    status_ghost = json.dumps({**status, "ts": "2026-11-30T04:00:00Z"}).encode()
    first = [
        (f"shian/v1/dev/d1/snap/{snap_a}", jpeg(200)),
        ("shian/v1/dev/stall-a/events", batch_payload([ticket("stall-a", sid, "A-1")])),
    ]
    ghost = batch_payload([raw_event(1, "{}", device="ghost")])
    bad = [
        # numbers
        (EV, b'{"v":1,"events":[1' + b"0" * 5000 + b"]}", "limit"),
        (EV, batch_payload([raw_event(900, '{"n":' + "9" * 5000 + "}")]), "limit"),
        (EV, batch_payload([raw_event(901, '{"n":NaN}')]), "limit"),
        (EV, batch_payload([raw_event(902, '{"n":-Infinity}')]), "limit"),
        (EV, batch_payload([raw_event(903, '{"n":1e400}')]), "limit"),
        (EV, b"9" * 5000, "limit"),
        # nesting and sizes
        (EV, deep_list[:120_000], "limit"),
        (EV, batch_payload([raw_event(904, deep_data)]), "limit"),
        (
            EV,
            b'{"v":1,"events":[],' + b",".join(b'"k%d":1' % i for i in range(300)) + b"}",
            "limit",
        ),
        (EV, batch_payload([raw_event(905, json.dumps({"note": "x" * 20_000}))]), "limit"),
        (EV, b" " * (300 * 1024), "oversize"),
        # encodings
        (EV, b'{"v":1,"events":["\xff\xfe"]}', "not_json"),
        (EV, batch_payload([raw_event(906, '{"note":"\\ud800"}')]), "not_json"),
        (EV, '{"v":1,"events":[]}'.encode("utf-32"), "not_json"),
        # types
        (EV, b'{"v":true,"events":[]}', "schema"),
        (EV, b'{"v":1,"events":{}}', "schema"),
        (EV, b'{"v":"1","events":[]}', "schema"),
        (EV, b"null", "schema"),
        (EV, batch_payload([raw_event(907, '{"n":"seven"}')]), "schema"),
        (EV, b'{"v":1,"events":[[[]]]}', "schema"),
        # topics (others, such as .../events/more or .../snap/../../x, the broker never
        # hands the collector: it subscribes to the device topics' exact shapes)
        ("shian/v1/dev/" + "x" * 80 + "/events", batch_payload([event(1)]), "topic"),
        ("shian/v1/dev/bad name/events", batch_payload([event(1)]), "topic"),
        # who is speaking
        ("shian/v1/dev/ghost/events", ghost, "unknown_device"),
        (EV, batch_payload([raw_event(908, "{}", site="s2")]), "site_mismatch"),
        (EV, batch_payload([ticket("d1", new_ticket_id(), "A-1", site="s1")]), "role_mismatch"),
        ("shian/v1/dev/ghost/status", status_ghost, "unknown_device"),
        (
            "shian/v1/dev/stall-b/events",
            batch_payload([ticket("stall-b", sid, "B")]),
            "ticket_conflict",
        ),
        (f"shian/v1/dev/d2/snap/{snap_a}", jpeg(10), "snapshot_conflict"),
        # evidence that only looks like it
        (f"shian/v1/dev/d1/snap/{uuid7()}", b"\xff\xd8\xff\xe0" + b"\x00" * 500, "schema"),
    ]
    return Corpus(first, bad)


def test_hostile_corpus_then_good_events(tmp_path: Path, mosquitto: Mosquitto) -> None:
    service = CloudService(cloud_config(tmp_path, mosquitto.url))
    register(service.store, "d1", "s1")
    register(service.store, "d2", "s1")
    register(service.store, "stall-a", "m1", "stall", market="m1")
    register(service.store, "stall-b", "m1", "stall", market="m1")
    service.start()
    assert service.collector.connected.wait(10)
    c = corpus()
    bad, first = c.bad, c.first
    settings = MqttSettings(url=mosquitto.url)
    client = make_client(settings, "hostile", protocols(settings)[0])
    client.connect(settings.host, settings.port)
    client.loop_start()
    try:
        for topic, payload in first:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        wait_for(lambda: service.store.events.count() == 1, what="the first ticket")
        for topic, payload, _ in bad:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
            assert service.collector.health() is None
        good = [event(seq) for seq in range(1, 21)]
        client.publish(EV, batch_payload(good[:10]), qos=1).wait_for_publish(5)
        mixed = b'{"v":1,"events":[' + ",".join(good[10:]).encode() + b',{"kind":"x"},7]}'
        client.publish(EV, mixed, qos=1).wait_for_publish(5)
        wait_for(lambda: service.store.events.count() == 21, what="the 20 good events after")
        wait_for(
            lambda: len(service.store.dead.list(500)) >= len(bad) + 2,
            what=f"dead letters: {[r['reason'][:30] for r in service.store.dead.list(500)]}",
        )
        again = bad[1]  # the same bytes again: a repeat, not another row
        client.publish(again[0], again[1], qos=1).wait_for_publish(5)
        wait_for(
            lambda: any(r["repeats"] == 1 for r in service.store.dead.list(500)),
            what="the repeat counted",
        )
        assert service.collector.health() is None
        rows = service.store.dead.list(500)
        (d1,) = [d for d in service.store.devices.list() if d["device"] == "d1"]
        snap = service.store.evidence.get(first[0][0].rsplit("/", 1)[1])
        sold = json.loads(first[1][1])["events"][0]["data"]["ticket_id"]
        owner = (service.store.tickets.get(sold) or {}).get("device")
    finally:
        client.disconnect()
        client.loop_stop()
        service.stop()
    reasons = [r["reason"].split(":")[0] for r in rows]
    for topic, _, category in bad:
        assert category in reasons, (topic[:60], category, sorted(set(reasons)))
    assert len(rows) == len(bad) + 2, "one row each, plus the mixed batch's two bad events"
    assert d1["events"] == 20 and d1["duplicates"] == 0
    assert snap is not None and snap["device"] == "d1"
    assert Path(snap["path"]).read_bytes() == first[0][1], "the first device's evidence stands"
    assert owner == "stall-a", "the ticket stays the first stall's"
