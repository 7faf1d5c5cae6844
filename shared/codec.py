"""JSON codec for MQTT payloads, with size limits and reasons a dead-letter table can keep.

An events message is ``{"v": 1, "events": [<envelope>, ...]}``. The edge builds envelopes as
text once, at enqueue time, and joins them here; the collector decodes each event on its own so
one bad event in a batch is dead-lettered without losing its neighbours.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shared import SCHEMA_VERSION
from shared.kinds import KINDS
from shared.models import Envelope, Status

MAX_MESSAGE_BYTES = 256 * 1024
"""The largest MQTT payload either side accepts."""
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
"""The largest evidence JPEG on ``.../snap/{id}``."""
MAX_EVENT_BYTES = 32 * 1024
"""The largest single event (envelope as JSON); images travel on the snapshot topic."""
BATCH_OVERHEAD = len('{"v":1,"events":[]}')


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


def _loads(payload: bytes) -> Any:
    if len(payload) > MAX_MESSAGE_BYTES:
        raise CodecError("oversize", f"{len(payload)} bytes > limit {MAX_MESSAGE_BYTES}")
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError("not_json", str(exc)) from None


def _version(obj: dict[str, Any]) -> None:
    v = obj.get("v")
    if isinstance(v, int) and not isinstance(v, bool) and v > SCHEMA_VERSION:
        raise CodecError("schema_version", f"v={v} is newer than supported {SCHEMA_VERSION}")


def _first_error(exc: ValidationError) -> str:
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
        raise CodecError("schema", _first_error(exc)) from None
    if topic_device is not None and env.device != topic_device:
        raise CodecError(
            "device_mismatch", f"event device {env.device!r} on topic of {topic_device!r}"
        )
    return env


def decode_batch(payload: bytes, topic_device: str | None) -> DecodedBatch:
    """Decode an events message. A message-level fault raises ``CodecError``; a bad event
    inside a good message is returned in ``rejected`` with its own bytes and reason."""
    obj = _loads(payload)
    if not isinstance(obj, dict):
        raise CodecError("schema", f"message is {type(obj).__name__}, not an object")
    _version(obj)
    extra = set(obj) - {"v", "events"}
    if extra:
        raise CodecError("schema", f"unknown keys {sorted(extra)}")
    if not isinstance(obj.get("v"), int) or not isinstance(obj.get("events"), list):
        raise CodecError("schema", "message needs integer 'v' and list 'events'")
    out = DecodedBatch()
    for item in obj["events"]:
        try:
            out.events.append(decode_event(item, topic_device))
        except CodecError as exc:
            raw = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode()
            out.rejected.append(Rejected(raw, exc.reason))
    return out


def encode_status(status: Status) -> bytes:
    return status.model_dump_json(exclude_none=True).encode()


def decode_status(payload: bytes, topic_device: str | None) -> Status:
    obj = _loads(payload)
    if not isinstance(obj, dict):
        raise CodecError("schema", f"status is {type(obj).__name__}, not an object")
    _version(obj)
    try:
        st = Status.model_validate(obj)
    except ValidationError as exc:
        raise CodecError("schema", _first_error(exc)) from None
    if topic_device is not None and st.device != topic_device:
        raise CodecError(
            "device_mismatch", f"status device {st.device!r} on topic of {topic_device!r}"
        )
    return st


_SNAP_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def check_snapshot(snap_id: str, payload: bytes) -> None:
    """A snapshot message: a UUIDv7 id in the topic and a JPEG of bounded size."""
    if not _SNAP_ID.match(snap_id):
        raise CodecError("schema", f"snapshot id {snap_id!r} is not a UUIDv7")
    if len(payload) > MAX_SNAPSHOT_BYTES:
        raise CodecError("oversize", f"{len(payload)} bytes > limit {MAX_SNAPSHOT_BYTES}")
    if not payload.startswith(b"\xff\xd8\xff"):
        raise CodecError("schema", "snapshot is not a JPEG")
