"""Bad input on paths added for it: each is refused with a reason and nothing stops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.collector import Incoming, classify
from edge.config import EdgeConfig
from edge.notices import Notices
from edge.store.outbox import Outbox, OutboxError
from edge.sync.mqtt import SyncWorker
from tests.test_alerts_engine import T0, ev, feed, violation
from tests.test_alerts_engine import store as store  # the fixture

SNAP = "01a2163b-7bee-7102-8423-f30d289971eb"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (f"shian/v1/dev/d1/snap/{SNAP}", b"GIF89a not a jpeg", "schema: snapshot is not a JPEG"),
        ("shian/v1/dev/d1/snap/not-a-uuid", b"\xff\xd8\xff\xe0", "schema: snapshot id"),
        (f"shian/v1/dev/d1/snap/{SNAP}", b"\xff\xd8\xff" + b"x" * (3 << 20), "oversize"),
    ],
)
def test_bad_snapshots_are_dead_letters(topic: str, payload: bytes, reason: str) -> None:
    _, _, dead, snaps = classify([Incoming(None, 1, 1, topic, payload)])
    assert not snaps and len(dead) == 1 and dead[0].reason.startswith(reason)


def test_a_box_cannot_rectify_another_sites_alert(store) -> None:
    feed(store, [ev("violation", violation(), 1)])
    (a,) = store.alerts.list()
    feed(
        store,
        [
            ev(
                "rectification",
                {"alert": a["id"], "note": "not mine"},
                1,
                device="k9",
                site="elsewhere",
            )
        ],
        device="k9",
        now=T0 + 1,
    )
    replies = [
        json.loads(p)
        for _, t, p, _ in store.outgoing.pending(0, 100)
        if t == "shian/v1/dev/k9/cmd/reply"
    ]
    assert replies and not replies[-1]["ok"] and "no alert" in replies[-1]["reason"]
    assert store.alerts.get(a["id"])["state"] == "open"


def test_bad_commands_on_the_box_are_counted_and_ignored(tmp_path: Path) -> None:
    cfg = EdgeConfig.model_validate({"device": "k1", "site": "s1", "data_dir": str(tmp_path)})
    outbox = Outbox(cfg.outbox_path, "k1", "s1")
    notices = Notices(outbox)
    worker = SyncWorker(cfg, outbox, lambda *_: None)  # type: ignore[arg-type, return-value]
    worker.handlers["notice"] = notices.on_notice
    assert worker._command("shian/v1/dev/k1/cmd/ack", b"{not json") is False
    assert worker._command("shian/v1/dev/k1/cmd/notice/abc", b"[1, 2]") is False
    assert (
        worker._command("shian/v1/dev/k1/cmd/notice/abc", json.dumps({"id": "other"}).encode())
        is False
    )
    assert worker.counters["sync_bad_commands"] == 3
    assert notices.list() == []
    with pytest.raises(OutboxError, match="no notice"):
        notices.rectify("abc", "done")
    outbox.close()


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300), retained=st.booleans())
def test_any_collector_hello_is_taken_or_counted_never_raised(
    tmp_path_factory: pytest.TempPathFactory, payload: bytes, retained: bool
) -> None:
    """The hello is read off the broker: whatever bytes come, the box takes it or counts it
    as a bad command."""
    tmp = tmp_path_factory.mktemp("hello")
    cfg = EdgeConfig.model_validate({"device": "k1", "site": "s1", "data_dir": str(tmp)})
    outbox = Outbox(cfg.outbox_path, "k1", "s1")
    worker = SyncWorker(cfg, outbox, lambda *_: None)  # type: ignore[arg-type, return-value]
    worker._new_collector(payload, retained)
    taken = worker._hello is not None
    assert taken != (worker.counters["sync_bad_commands"] == 1), "taken, or counted as bad"
    outbox.close()
