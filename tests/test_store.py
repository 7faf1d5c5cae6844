"""The collector's store: idempotent writes, sequence ranges and gaps, dead letters."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from cloud.collector import Incoming, classify
from cloud.ranges import holes, merge_ranges
from cloud.store import DeadLetter, Store
from shared.codec import batch_payload
from tests.conftest import register
from tests.test_codec import event


@given(st.lists(st.integers(1, 200), max_size=100), st.lists(st.integers(1, 200), max_size=100))
def test_ranges_and_holes_match_a_plain_set(first: list[int], second: list[int]) -> None:
    ranges = merge_ranges(merge_ranges([], first), second)
    seen = set(first) | set(second)
    assert {s for lo, hi in ranges for s in range(lo, hi + 1)} == seen
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))
    top = max(seen, default=0)
    assert {s for lo, hi in holes(ranges) for s in range(lo, hi + 1)} == set(
        range(1, top + 1)
    ) - seen


def msgs(*payloads: bytes, topic: str = "shian/v1/dev/d1/events") -> list[Incoming]:
    return [Incoming(None, i, 1, topic, p) for i, p in enumerate(payloads)]


def test_writes_are_idempotent_and_gaps_are_reported(store_target: str | Path) -> None:
    store = Store(store_target)
    register(store)
    first = [event(1), event(2), event(5)]
    events, statuses, dead, _ = classify(msgs(batch_payload(first)))
    res = store.write(events, statuses, dead)
    assert (res.inserted, res.duplicates) == (3, 0)
    assert res.new_gaps == {"d1": [(3, 4)]}
    res = store.write(events, statuses, dead)  # the same message again (a redelivery)
    assert (res.inserted, res.duplicates) == (0, 3)
    more, _, _, _ = classify(msgs(batch_payload([event(3), event(4)])))
    store.write(more, [], [])
    dev = store.devices.list()[0]
    assert dev["events"] == 5 and dev["duplicates"] == 3 and dev["gaps"] == []
    assert dev["max_seq"] == 5 and store.events.count() == 5


def test_bad_messages_become_dead_letters(store_target: str | Path) -> None:
    store = Store(store_target)
    batch = msgs(b"garbage", b"")
    batch += msgs(b"{}", topic="shian/v1/dev/d1/status")
    batch += msgs(batch_payload([event(1)]), topic="shian/v1/dev/d1/events/extra")
    events, statuses, dead, _ = classify(batch)
    assert not events and not statuses
    assert [d.reason.split(":")[0] for d in dead] == ["not_json", "not_json", "schema", "topic"]
    store.write(events, statuses, dead)
    rows = store.dead.list()
    assert {r["payload"] for r in rows} >= {b"garbage", b"{}"}


def test_dead_letters_keep_a_bounded_prefix_of_a_huge_payload(store_target: str | Path) -> None:
    store = Store(store_target)
    store.write([], [], [DeadLetter("t", b"x" * 10_000_000, "oversize: ...")])
    (row,) = store.dead.list()
    assert 0 < len(row["payload"]) <= 256 * 1024


def test_a_nul_from_a_box_is_stored_on_both_backends(store_target: str | Path) -> None:
    """PostgreSQL text refuses NUL; a box's NUL must not make the batch fail for ever."""
    from cloud.alerts.engine import AlertEngine
    from cloud.config import AlertSettings

    store = Store(store_target, engine=AlertEngine(AlertSettings()))
    register(store)
    bad_key = event(1, data='{"n":1,"x\\u0000y":2}')
    cam = event(
        2,
        kind="violation",
        data='{"camera":"cam1","type":"no_mask","label":"fa\\u0000ce","score":0.9,'
        '"box":[1,2,3,4],"frame":[640,360],"model":"m"}',
    )
    events, statuses, dead, _ = classify(msgs(batch_payload([bad_key, cam])))
    res = store.write(events, statuses, dead)
    assert res.inserted == 1 and res.deadletters == 1
    assert "x" in store.dead.list()[0]["reason"]
    (alert,) = store.alerts.list()
    assert alert["title"].startswith("no_mask on cam1 (fa") and alert["type"] == "no_mask"
