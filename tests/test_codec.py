"""The shared codec: round trips, each rejection reason, and arbitrary input never crashing."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import event as tally
from hypothesis import given, settings
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
        (obj(id=str(uuid7()).upper()), "schema"),  # one spelling of each id
        (obj(ts="2026-11-26T04:02:05"), "schema"),  # no time zone
        (obj(ts="0001-01-01T00:00:00+08:00"), "schema"),  # no time in UTC
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


_ODD_TIMES = ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-01:00", "2026-11-30T12:00:00+08:00"]
_DEEP: list[object] = [1]
for _ in range(12):
    _DEEP = [_DEEP]


def _message(draw: st.DrawFn) -> bytes:
    """An events message near a good one: fields of its events changed to other JSON
    values, odd numbers (long, huge, 1e400), lone surrogates, deep data, duplicate keys."""
    odd = st.one_of(
        json_values,
        st.integers(-(10**40), 10**40),
        st.sampled_from([1e300, 1.5, -0.0, "\ud800", "x" * 16_385, _DEEP, *_ODD_TIMES]),
    )
    events = []
    for _ in range(draw(st.integers(0, 4))):
        e = obj(kind=draw(st.sampled_from(["test"] * 5 + ["device_started", "nope"])))
        e["data"] = draw(st.sampled_from([{"n": 1}, {"note": "好", "n": -3}, {}]))
        changes = st.lists(st.sampled_from([*e, "data", "extra"]), max_size=2)
        for key in draw(st.just([]) | changes):
            inside = key == "data" and isinstance(e["data"], dict) and draw(st.booleans())
            target = e["data"] if inside else e
            target[key if target is e else draw(st.sampled_from(["n", "note", "x"]))] = draw(odd)
        e["device"] = draw(st.sampled_from([e["device"]] * 5 + ["d2"]))
        text = json.dumps(e, ensure_ascii=draw(st.booleans()))
        if draw(st.integers(0, 3)) == 0:
            text = text[:-1] + ', "seq": ' + json.dumps(draw(odd)) + "}"  # the last one counts
        events.append(text)
    v = draw(st.sampled_from(["1"] * 15 + ["1.0", '"1"', "true", "2", "0"]))
    return f'{{"v": {v}, "events": [{", ".join(events)}]}}'.encode("utf-8", "surrogatepass")


@settings(max_examples=500)
@given(st.composite(_message)())
def test_a_message_decoded_whole_is_what_decoding_each_event_gives(payload: bytes) -> None:
    """The collector's fast path (the message whole, in pydantic's core) accepts exactly
    what the event-by-event path accepts in full, no more, and only declines a good
    message for the escape of a surrogate, which it leaves to that path."""
    from shared.codec import _decode_each, _decode_whole
    from shared.jsonlimits import surrogate_escapes

    whole = _decode_whole(payload, "d1")
    try:
        each = _decode_each(payload, "d1")
    except CodecError:
        each = None
    accepted = each is not None and not each.rejected
    tally("decoded whole" if whole is not None else "good, slow way" if accepted else "faulty")
    if whole is not None:
        assert each is not None and accepted and each.events == whole
    elif accepted and not surrogate_escapes(payload):
        pytest.fail("a good message went the slow way")


@pytest.mark.parametrize(
    ("number", "kept"),
    [
        (str(10**32 - 1), True),
        (str(-(10**32) + 1), True),
        ("1e308", True),
        ("1e-400", True),  # rounds to 0.0, as any parser makes it
        (str(10**32), False),
        ("9" * 5000, False),  # more digits than Python makes an int of
        ("1e400", False),
        ("NaN", False),
        ("-Infinity", False),
    ],
)
def test_numbers_a_box_may_send(number: str, kept: bool) -> None:
    """Integers of up to 32 digits and finite floats; any other number costs only its own
    event, whichever way the message is decoded."""
    data = f'{{"camera":"cam1","state":"raised","problem":"covered","metrics":{{"x":{number}}}}}'
    bodies = [event(1), raw_event(2, data, kind="camera_tampered")]
    out = decode_batch(batch_payload(bodies), "d1")
    assert [e.seq for e in out.events] == ([1, 2] if kept else [1])
    assert [r.reason.split(":")[0] for r in out.rejected] == ([] if kept else ["limit"])
