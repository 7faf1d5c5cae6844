"""JSON codec for MQTT payloads, with size limits and reasons a dead-letter table can keep.

An events message is ``{"v": 1, "events": [<envelope>, ...]}``. The edge builds envelopes as
text once, at enqueue time, and joins them here; the collector decodes each event on its own so
one bad event in a batch is dead-lettered without losing its neighbours.
"""

from __future__ import annotations

import io
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared import SCHEMA_VERSION
from shared.kinds import KINDS, SNAPSHOT_ID
from shared.models import Envelope, Status

MAX_MESSAGE_BYTES = 256 * 1024
"""The largest MQTT payload either side accepts."""
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
"""The largest evidence JPEG on ``.../snap/{id}``."""
MAX_EVENT_BYTES = 32 * 1024
"""The largest single event (envelope as JSON); images travel on the snapshot topic."""
BATCH_OVERHEAD = len('{"v":1,"events":[]}')

# Limits on the shape of any JSON a box sends, checked while parsing and just after, so no
# payload reaches a model, the store or a log that Python itself cannot handle (an integer of
# 5,000 digits raises ValueError; a 100,000-deep list raises RecursionError).
MAX_DEPTH = 12
"""Nesting of objects and lists (a batch's events' data needs 5)."""
MAX_NUMBER_CHARS = 32
"""Characters of one number as written (an int64 needs 20)."""
MAX_STRING_CHARS = 16 * 1024
"""Characters of one string or key."""
MAX_KEYS = 256
"""Keys of one object."""
MAX_ITEMS = 10_000
"""Items of one list."""


class CodecError(ValueError):
    """A payload that cannot be accepted; ``reason`` starts with a short category."""

    def __init__(self, category: str, detail: str) -> None:
        super().__init__(f"{category}: {detail}")
        self.category = category
        self.detail = detail

    @property
    def reason(self) -> str:
        return str(self)


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


@dataclass(frozen=True)
class _Refused:
    """A value the parser met and would not make (a number too long, NaN, Infinity): kept
    as a marker so that only the event holding it is refused, not its whole batch."""

    reason: str


def _number(text: str, kind: type[int] | type[float]) -> int | float | _Refused:
    if len(text) > MAX_NUMBER_CHARS:
        return _Refused(f"a number of {len(text)} characters > {MAX_NUMBER_CHARS}")
    value = kind(text)
    if kind is float and not math.isfinite(value):
        return _Refused(f"number {text[:20]} is out of range")
    return value


def _int(text: str) -> int | float | _Refused:
    return _number(text, int)


def _float(text: str) -> int | float | _Refused:
    return _number(text, float)


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)
"""Every number through the checks (a Python call each, cheaper than looking for long ones
first), built once."""


def _text(value: str, surrogates: bool) -> None:
    if len(value) > MAX_STRING_CHARS:
        raise CodecError("limit", f"a string of {len(value)} characters")
    if surrogates and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # "\ud800" is valid JSON but no UTF-8 (nor any database)
            raise CodecError("not_json", "a string holds a lone surrogate") from None


_CONTAINERS = (dict, list, _Refused)

_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_PLAIN = json.JSONDecoder()
_RISKY = re.compile(rb"[-+.0-9eE]{%d}|[eE][-+]?[0-9]{3}|NaN|Infinity" % (MAX_NUMBER_CHARS + 1))
"""What ``_DECODER``'s hooks could refuse: a run of number characters longer than any
allowed number, an exponent of three digits (1e400 is no finite float), NaN, Infinity. It
may also match inside a string: then the hooks just run.
A payload without it is decoded with no Python call per number."""


def check_shape(obj: Any, depth: int = 1, surrogates: bool = True) -> None:
    """Depth, keys, items, string sizes and refused values of parsed JSON (no recursion);
    ``depth`` is where ``obj`` sits in its message. ``surrogates=False`` when the payload
    held no ``\\uD800``-``\\uDFFF`` escape (the only way a JSON text makes one). Written for
    speed: it runs on every event the collector takes in."""
    if type(obj) is str:
        _text(obj, surrogates)
    if not isinstance(obj, _CONTAINERS):
        return
    stack: list[tuple[Any, int]] = [(obj, depth)]
    pop, push, limit = stack.pop, stack.append, MAX_STRING_CHARS
    while stack:
        value, depth = pop()
        kind = type(value)
        if kind is _Refused:
            raise CodecError("limit", value.reason)
        if depth > MAX_DEPTH:
            raise CodecError("limit", f"nested deeper than {MAX_DEPTH}")
        if len(value) > (MAX_KEYS if kind is dict else MAX_ITEMS):
            raise CodecError("limit", f"{len(value)} keys or items in one place")
        for key, item in value.items() if kind is dict else enumerate(value):
            if type(key) is str and (surrogates or len(key) > limit):
                _text(key, surrogates)
            if type(item) is str:
                if surrogates or len(item) > limit:
                    _text(item, surrogates)
            elif isinstance(item, _CONTAINERS):
                push((item, depth + 1))


def loads(payload: bytes, *, shape: bool = True) -> Any:
    """Parse a box's JSON within the limits above; anything else raises ``CodecError``.
    With ``shape=False`` the caller checks the parts (``check_shape``) itself."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise CodecError("oversize", f"{len(payload)} bytes > limit {MAX_MESSAGE_BYTES}")
    try:
        text = payload.decode("utf-8")  # JSON between systems is UTF-8 (RFC 8259), not -16/-32
        obj = (_DECODER if _RISKY.search(payload) else _PLAIN).decode(text)
    except RecursionError:
        raise CodecError("limit", f"nested deeper than {MAX_DEPTH}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError("not_json", str(exc)) from None
    except Exception as exc:  # whatever else the parser may raise on hostile bytes
        raise CodecError("not_json", f"{type(exc).__name__}: {exc}") from None
    if shape:
        check_shape(obj, surrogates=bool(_SURROGATE.search(payload)))
    return obj


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
    if topic_device is not None and env.device != topic_device:
        raise CodecError(
            "device_mismatch", f"event device {env.device!r} on topic of {topic_device!r}"
        )
    return env


def decode_batch(payload: bytes, topic_device: str | None) -> DecodedBatch:
    """Decode an events message. A message-level fault raises ``CodecError``; a bad event
    inside a good message is returned in ``rejected`` with its own bytes and reason."""
    obj = loads(payload, shape=False)
    if not isinstance(obj, dict):
        check_shape(obj)
        raise CodecError("schema", f"message is {type(obj).__name__}, not an object")
    surrogates = bool(_SURROGATE.search(payload))
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
            out.rejected.append(Rejected(_raw(item), exc.reason))
        except Exception as exc:  # a fault of ours must not cost the event's neighbours
            out.rejected.append(Rejected(_raw(item), internal(exc)))
    return out


def internal(exc: BaseException) -> str:
    """The dead-letter reason for an exception nobody foresaw (a bug, not the box's fault)."""
    return f"internal: {type(exc).__name__}: {str(exc)[:200]}"


def _raw(item: Any) -> bytes:
    def refused(value: Any) -> str:
        return f"<{value.reason}>" if isinstance(value, _Refused) else repr(value)

    try:
        text = json.dumps(item, ensure_ascii=False, separators=(",", ":"), default=refused)
    except (ValueError, RecursionError):
        text = f"<a {type(item).__name__} too deep to keep>"
    return text.encode("utf-8", "replace")


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
