"""The collector's message path fuzzed: any topic, any bytes, any mix in one batch; decoding
never raises, every message is accounted for, and the store takes the result."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.collector import Incoming, classify
from cloud.store import Store
from shared.codec import batch_payload, decode_batch
from tests.conftest import register
from tests.test_alerts_engine import T0, ev, feed
from tests.test_alerts_engine import store as store  # the fixture
from tests.test_codec import event, json_values, raw_event

topics = st.one_of(
    st.sampled_from(
        [
            "shian/v1/dev/d1/events",
            "shian/v1/dev/d1/status",
            "shian/v1/dev/d1/snap/01a2163b-7bee-7102-8423-f30d289971eb",
            "shian/v1/dev/ghost/events",
            "shian/v1/sup/wang/cmd",
            "shian/v1/dev/d1/events/x",
        ]
    ),
    st.text(max_size=60).map(lambda t: "shian/v1/dev/" + t),
)
payloads = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.lists(st.one_of(json_values, st.just(None)), max_size=4).map(
        lambda items: json.dumps({"v": 1, "events": items}).encode()
    ),
    st.lists(st.integers(1, 50), max_size=5).map(
        lambda seqs: batch_payload([event(s) for s in seqs])
    ),
    st.text(max_size=30).map(
        lambda note: batch_payload([raw_event(1, json.dumps({"note": note}))])
    ),
)


def _nothing_to_store(m: Incoming) -> bool:
    """A supervisor's command (the engine takes it), a retained status being cleared, or a
    well-formed batch of no events."""
    if m.topic.startswith("shian/v1/sup/") or (m.topic.endswith("/status") and not m.payload):
        return True
    device = m.topic.split("/")[3]
    out = decode_batch(m.payload, device)
    return not out.events and not out.rejected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(topics, payloads), min_size=1, max_size=6))
def test_any_batch_is_decoded_and_stored_without_an_exception(
    tmp_path_factory: Any, messages: list[tuple[str, bytes]]
) -> None:
    batch = [Incoming(None, n, 1, t, p) for n, (t, p) in enumerate(messages)]
    for m in batch:  # each accounted for: stored, refused with a reason, or nothing to store
        e, s, d, sn = classify([m])
        if not (e or s or d or sn):
            assert _nothing_to_store(m), m
    events, statuses, dead, snaps = classify(batch)
    store = Store(tmp_path_factory.mktemp("s") / "c.db")
    register(store)
    res = store.write(events, statuses, dead, snaps)
    assert res.inserted + res.duplicates == len(res.accepted)
    assert all(e.device == "d1" for e in res.accepted)
    store.close()


def test_a_camera_reason_from_an_old_box_reaches_no_alert_with_its_password(store: Store) -> None:
    """The edge strips credentials; the cloud strips them again from what a box sends."""
    reason = "cannot open rtsp://admin:Pa55@10.0.0.64:554/Streaming/Channels/102"
    feed(store, [ev("camera_offline", {"camera": "cam2", "reason": reason}, 1)], now=T0)
    (alert,) = store.alerts.list()
    assert "Pa55" not in json.dumps(alert) and "rtsp://***@10.0.0.64" in alert["title"]
    sent = [p for _, _, p, _ in store.outgoing.pending(0, 100)]
    assert sent and not any("Pa55" in p for p in sent)
    assert not any("Pa55" in r["text"] for r in store.db.query("SELECT text FROM webhook_queue"))
