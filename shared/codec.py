"""JSON codec for MQTT payloads, with size limits and reasons a dead-letter table can keep.

An events message is ``{"v": 1, "events": [<envelope>, ...]}``. The edge builds envelopes as
text once, at enqueue time, and joins them here. The collector decodes a message whole in
pydantic's core when it can, and otherwise each event on its own, so that one bad event in a
batch is dead-lettered without losing its neighbours.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC
from typing import Annotated, Any

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from shared import SCHEMA_VERSION
from shared.jsonlimits import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MAX_ITEMS,
    MAX_MESSAGE_BYTES,
    MAX_STRING_CHARS,
    CodecError,
    check_shape,
    loads,
    raw_bytes,
    surrogate_escapes,
)
from shared.kinds import KINDS, SNAPSHOT_ID
from shared.models import Envelope, Status

__all__ = [
    "BATCH_OVERHEAD",
    "MAX_DEPTH",
    "MAX_EVENT_BYTES",
    "MAX_INT_DIGITS",
    "MAX_ITEMS",
    "MAX_MESSAGE_BYTES",
    "MAX_SNAPSHOT_BYTES",
    "MAX_STRING_CHARS",
    "CodecError",
    "DecodedBatch",
    "Rejected",
    "batch_payload",
    "check_shape",
    "check_snapshot",
    "decode_batch",
    "decode_event",
    "decode_status",
    "encode_status",
    "envelope_json",
    "first_error",
    "internal",
    "loads",
]

MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
"""The largest evidence JPEG on ``.../snap/{id}``."""
MAX_EVENT_BYTES = 32 * 1024
"""The largest single event (envelope as JSON); images travel on the snapshot topic."""
BATCH_OVERHEAD = len('{"v":1,"events":[]}')


@dataclass
class Rejected:
    raw: bytes
    reason: str


@dataclass
class DecodedBatch:
    events: list[Envelope] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def envelope_json(
    *, event_id: str, device: str, site: str, seq: int, ts: str, kind: str, data_json: str
) -> str:
    """Assemble an envelope from parts already validated (``data_json`` is compact JSON)."""
    head = json.dumps(
        {
            "v": SCHEMA_VERSION,
            "id": event_id,
            "device": device,
            "site": site,
            "seq": seq,
            "ts": ts,
            "kind": kind,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return f'{head[:-1]},"data":{data_json}}}'


def batch_payload(envelopes: list[str]) -> bytes:
    return f'{{"v":{SCHEMA_VERSION},"events":[{",".join(envelopes)}]}}'.encode()


def _version(obj: dict[str, Any]) -> None:
    v = obj.get("v")
    if isinstance(v, int) and not isinstance(v, bool) and v > SCHEMA_VERSION:
        raise CodecError("schema_version", f"v={v} is newer than supported {SCHEMA_VERSION}")


def first_error(exc: ValidationError) -> str:
    """A validation error in one line: where, what, and how many more."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(root)"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{loc}: {err['msg']}{more}"


def decode_event(obj: Any, topic_device: str | None) -> Envelope:
    """Validate one envelope object; raise ``CodecError`` with the reason."""
    if not isinstance(obj, dict):
        raise CodecError("schema", f"event is {type(obj).__name__}, not an object")
    _version(obj)
    kind = obj.get("kind")
    if isinstance(kind, str) and kind not in KINDS:
        raise CodecError("unknown_kind", f"kind {kind!r}")
    try:
        env = Envelope.model_validate(obj)
    except ValidationError as exc:
        raise CodecError("schema", first_error(exc)) from None
    try:
        _DATA[env.kind].validate_python(env.data)
    except ValidationError as exc:
        raise CodecError("schema", "data." + first_error(exc)) from None
    _in_utc(env)
    if topic_device is not None and env.device != topic_device:
        raise CodecError(
            "device_mismatch", f"event device {env.device!r} on topic of {topic_device!r}"
        )
    return env


def _in_utc(env: Envelope) -> None:
    """An event's time must have a UTC one, as it is stored (0001-01-01T00:00+08:00 has
    none)."""
    if env.ts.utcoffset():
        try:
            env.ts.astimezone(UTC)
        except OverflowError:
            raise CodecError("schema", "ts: out of range in UTC") from None


_DATA = {kind: model.__pydantic_validator__ for kind, model in KINDS.items()}
"""Each kind's check of ``data`` (its model's validator, without making a model)."""


@with_config(ConfigDict(extra="forbid"))
class _Message(TypedDict):
    """An events message as pydantic's core reads it whole (strict: anything unusual goes
    the slow way, which says what is wrong)."""

    v: Annotated[int, Field(strict=True, ge=1, le=SCHEMA_VERSION)]
    events: Annotated[list[Envelope], Field(max_length=MAX_ITEMS)]


_MESSAGE = TypeAdapter(_Message)


def _decode_whole(payload: bytes, topic_device: str | None) -> list[Envelope] | None:
    """The events of a message with nothing wrong in it, parsed and validated in pydantic's
    core (a quarter of the time of one event at a time); None for any fault, which the
    event-by-event path then finds and words. It accepts no more than that path (a property
    test holds them to it): the envelope's fields are bounded by their types, so only
    ``data`` needs ``check_shape``; a lone surrogate's escape goes that way."""
    if len(payload) > MAX_MESSAGE_BYTES or surrogate_escapes(payload):
        return None
    try:
        events = _MESSAGE.validate_json(payload)["events"]
        for env in events:
            if topic_device is not None and env.device != topic_device:
                return None
            _DATA[env.kind].validate_python(env.data)  # KeyError: an unknown kind
            check_shape(env.data, depth=4, surrogates=False)
            _in_utc(env)
    except Exception:  # any fault at all (even a validator's OverflowError): the slow way
        return None
    return events


def decode_batch(payload: bytes, topic_device: str | None) -> DecodedBatch:
    """Decode an events message. A message-level fault raises ``CodecError``; a bad event
    inside a good message is returned in ``rejected`` with its own bytes and reason."""
    whole = _decode_whole(payload, topic_device)
    return DecodedBatch(events=whole) if whole is not None else _decode_each(payload, topic_device)


def _decode_each(payload: bytes, topic_device: str | None) -> DecodedBatch:
    """``decode_batch`` one event at a time: each fault found and worded."""
    obj = loads(payload, shape=False)
    if not isinstance(obj, dict):
        check_shape(obj)
        raise CodecError("schema", f"message is {type(obj).__name__}, not an object")
    surrogates = surrogate_escapes(payload)
    check_shape({k: v for k, v in obj.items() if k != "events"}, surrogates=surrogates)
    _version(obj)
    extra = set(obj) - {"v", "events"}
    if extra:
        raise CodecError("schema", f"unknown keys {sorted(extra)}")
    v = obj.get("v")
    if (
        not isinstance(v, int)
        or isinstance(v, bool)
        or v < 1
        or not isinstance(obj.get("events"), list)
    ):
        raise CodecError("schema", "message needs integer 'v' and list 'events'")
    if len(obj["events"]) > MAX_ITEMS:
        raise CodecError("limit", f"{len(obj['events'])} events in one message")
    out = DecodedBatch()
    for item in obj["events"]:
        try:
            check_shape(item, depth=3, surrogates=surrogates)
            out.events.append(decode_event(item, topic_device))
        except CodecError as exc:
            out.rejected.append(Rejected(raw_bytes(item), exc.reason))
        except Exception as exc:  # a fault of ours must not cost the event's neighbours
            out.rejected.append(Rejected(raw_bytes(item), internal(exc)))
    return out


def internal(exc: BaseException) -> str:
    """The dead-letter reason for an exception nobody foresaw (a bug, not the box's fault)."""
    return f"internal: {type(exc).__name__}: {str(exc)[:200]}"


def encode_status(status: Status) -> bytes:
    return status.model_dump_json(exclude_none=True).encode()


def decode_status(payload: bytes, topic_device: str | None) -> Status:
    obj = loads(payload)
    if not isinstance(obj, dict):
        raise CodecError("schema", f"status is {type(obj).__name__}, not an object")
    _version(obj)
    try:
        st = Status.model_validate(obj)
    except ValidationError as exc:
        raise CodecError("schema", first_error(exc)) from None
    if topic_device is not None and st.device != topic_device:
        raise CodecError(
            "device_mismatch", f"status device {st.device!r} on topic of {topic_device!r}"
        )
    return st


_SNAP_ID = re.compile(SNAPSHOT_ID)
MAX_SNAPSHOT_PIXELS = 4096 * 4096
"""The largest evidence picture decoded (an 8 MP camera's frame is half of it)."""


def check_snapshot(snap_id: str, payload: bytes) -> None:
    """A snapshot message: a UUIDv7 id in the topic and a JPEG of bounded size that decodes
    (Pillow, which python-escpos brings anyway): bytes that only start like a JPEG are not
    evidence."""
    if not _SNAP_ID.fullmatch(snap_id):
        raise CodecError("schema", f"snapshot id {snap_id!r} is not a UUIDv7")
    if len(payload) > MAX_SNAPSHOT_BYTES:
        raise CodecError("oversize", f"{len(payload)} bytes > limit {MAX_SNAPSHOT_BYTES}")
    if not payload.startswith(b"\xff\xd8\xff"):
        raise CodecError("schema", "snapshot is not a JPEG")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(payload), formats=["JPEG"]) as image:
            width, height = image.size
            if width * height > MAX_SNAPSHOT_PIXELS:
                raise CodecError("limit", f"snapshot of {width}x{height} pixels is too large")
            image.load()
    except CodecError:
        raise
    except Exception as exc:  # Pillow's errors on broken images are of many classes
        raise CodecError("schema", f"snapshot is not a JPEG that decodes: {exc}") from None
