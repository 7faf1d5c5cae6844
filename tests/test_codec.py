"""The shared codec: round trips, each rejection reason, and arbitrary input never crashing."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared import SCHEMA_VERSION
from shared.codec import (
    MAX_MESSAGE_BYTES,
    CodecError,
    batch_payload,
    decode_batch,
    decode_status,
    envelope_json,
)
from shared.ids import uuid7


def event(seq: int = 1, device: str = "d1", kind: str = "test", data: str = '{"n":1}') -> str:
    return envelope_json(
        event_id=str(uuid7()),
        device=device,
        site="s1",
        seq=seq,
        ts="2026-11-26T04:02:05.123Z",
        kind=kind,
        data_json=data,
    )


def raw_event(seq: int, data: str, device: str = "d1", site: str = "s1", kind: str = "test") -> str:
    """An envelope as a box makes it, with any data text (even what the codec refuses)."""
    return envelope_json(
        event_id=str(uuid7()),
        device=device,
        site=site,
        seq=seq,
        ts="2026-11-30T04:00:00Z",
        kind=kind,
        data_json=data,
    )


def obj(**change: object) -> dict[str, object]:
    base = json.loads(event())
    base.update(change)
    return base


def test_round_trip_of_a_batch() -> None:
    out = decode_batch(batch_payload([event(1), event(2)]), "d1")
    assert [e.seq for e in out.events] == [1, 2] and not out.rejected
    assert out.events[0].data == {"n": 1}
    assert out.events[0].ts.tzinfo is not None


@pytest.mark.parametrize(
    ("payload", "category"),
    [
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (b"[1, 2]", "schema"),
        (b'{"v": 1}', "schema"),
        (b'{"v": 1, "events": [], "extra": 1}', "schema"),
        (b'{"v": 99, "events": []}', "schema_version"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "oversize"),
    ],
)
def test_message_level_rejections(payload: bytes, category: str) -> None:
    with pytest.raises(CodecError) as err:
        decode_batch(payload, "d1")
    assert err.value.category == category


@pytest.mark.parametrize(
    ("bad", "category"),
    [
        (obj(kind="no_such_kind"), "unknown_kind"),
        (obj(v=SCHEMA_VERSION + 1), "schema_version"),
        (obj(device="d2"), "device_mismatch"),
        (obj(seq=0), "schema"),
        (obj(id=str(uuid.uuid4())), "schema"),
        (obj(ts="2026-11-26T04:02:05"), "schema"),  # no time zone
        (obj(unexpected=1), "schema"),
        (obj(data={"n": "x"}), "schema"),
        (obj(data={"surprise": 1}), "schema"),
        ("a string", "schema"),
    ],
)
def test_event_level_rejections_keep_the_good_neighbours(bad: object, category: str) -> None:
    payload = json.dumps({"v": 1, "events": [json.loads(event(1)), bad]}).encode()
    out = decode_batch(payload, "d1")
    assert [e.seq for e in out.events] == [1]
    assert len(out.rejected) == 1
    assert out.rejected[0].reason.startswith(category + ":"), out.rejected[0].reason


def test_status_device_must_match_topic() -> None:
    payload = json.dumps(
        {"v": 1, "device": "d2", "site": "s", "state": "online", "ts": "2026-11-26T04:00:00Z"}
    ).encode()
    assert decode_status(payload, "d2").state == "online"
    with pytest.raises(CodecError, match="device_mismatch"):
        decode_status(payload, "d1")


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash_the_decoder(payload: bytes) -> None:
    try:
        out = decode_batch(payload, "d1")
    except CodecError as exc:
        assert exc.category in {"not_json", "schema", "schema_version", "oversize", "limit"}
    else:
        assert all(e.device == "d1" for e in out.events)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.lists(st.one_of(json_values, st.builds(obj, seq=st.integers())), max_size=5))
def test_arbitrary_events_are_accepted_or_rejected_with_a_reason(items: list[object]) -> None:
    payload = json.dumps({"v": 1, "events": items}).encode()
    out = decode_batch(payload, "d1")
    assert len(out.events) + len(out.rejected) == len(items)
    for r in out.rejected:
        assert r.reason.split(":")[0] in {
            "schema",
            "unknown_kind",
            "schema_version",
            "device_mismatch",
            "limit",
        }
    for e in out.events:
        assert e.seq >= 1


@given(
    st.lists(
        st.tuples(st.integers(1, 2**40), st.text(max_size=50), st.integers(-(2**31), 2**31)),
        min_size=1,
        max_size=20,
    )
)
def test_envelopes_built_on_the_edge_always_decode(rows: list[tuple[int, str, int]]) -> None:
    bodies = [event(seq, data=json.dumps({"note": note, "n": n})) for seq, note, n in rows]
    out = decode_batch(batch_payload(bodies), "d1")
    assert not out.rejected
    assert [(e.seq, e.data["note"], e.data["n"]) for e in out.events] == rows
