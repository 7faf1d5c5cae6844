"""Message models: the event envelope and the device status (heartbeat and last will)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
)

from shared import SCHEMA_VERSION
from shared.ids import UUID7_TEXT

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Device and site ids: safe as one MQTT topic level (no ``/``, ``+``, ``#``)."""


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcTime = Annotated[
    AwareDatetime, AfterValidator(_to_utc), PlainSerializer(_iso_z, return_type=str)
]
"""A timezone-aware time, kept and written in UTC (``2026-11-26T04:02:05.123Z``)."""

AnyZoneTime = Annotated[AwareDatetime, PlainSerializer(_iso_z, return_type=str)]
"""A timezone-aware time kept in the zone it was written in, and written in UTC: no Python
call while validating (an event's time; the collector stores it in UTC)."""

DeviceId = Annotated[str, Field(pattern=NAME_PATTERN, description="Device id.")]
SiteId = Annotated[str, Field(pattern=NAME_PATTERN, description="Site id.")]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """One event, as made on the edge. ``id`` is the dedupe key end to end.

    ``data`` is checked against its kind's model by the codec (``shared.codec``), not here:
    the collector validates a whole message in pydantic's core, with no Python call per
    event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Checked by pydantic's own core, not by validators in Python: the collector validates
    # every event of every box (bench/ingest.py).
    v: int = Field(ge=1, le=SCHEMA_VERSION, description="Envelope schema version.")
    id: str = Field(pattern=UUID7_TEXT, description="Event id, a UUIDv7 made on the edge, as text.")
    device: DeviceId
    site: SiteId
    seq: int = Field(
        ge=1, le=2**63 - 1, description="Per-device sequence number, strictly increasing."
    )
    ts: AnyZoneTime = Field(description="When the event happened (stored in UTC).")
    kind: str = Field(max_length=64, description="Event kind; selects the model of `data`.")
    data: dict[str, Any] = Field(description="Kind-specific payload.")


class OutboxStats(BaseModel):
    """The edge outbox as reported in every heartbeat."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    depth: int = Field(ge=0, description="Events the collector has not yet confirmed.")
    bytes: int = Field(ge=0, description="Size of those events.")
    oldest_age_s: float | None = Field(
        default=None, description="Age of the oldest undelivered event, seconds."
    )
    policy: Literal["drop_oldest", "reject_new"] = Field(description="What happens when full.")
    max_events: int = Field(ge=1, description="Capacity in events.")
    max_bytes: int = Field(ge=1, description="Capacity in bytes.")
    dropped: int = Field(ge=0, description="Events dropped to make room (drop_oldest).")
    rejected: int = Field(ge=0, description="Events refused because the outbox was full.")
    expired: int = Field(ge=0, description="Events dropped for exceeding max_age.")
    disk_full: bool = Field(
        default=False, description="The box's disk refused its last write (events are refused)."
    )


class Status(BaseModel):
    """Retained on ``.../status``: heartbeats while online, the last will when gone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = Field(ge=1, le=SCHEMA_VERSION, description="Schema version.")
    device: DeviceId
    site: SiteId
    state: Literal["online", "offline"] = Field(description="online, or offline (will or stop).")
    reason: str = Field(default="", max_length=64, description="Why, for offline: will, stop.")
    ts: UtcTime = Field(description="When written; for the last will, when the session began.")
    session: UtcTime | None = Field(
        default=None,
        description="When the MQTT session it belongs to began, by the box's clock (shown, "
        "never used to order statuses: run, sess and n do that).",
    )
    run: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="The agent process that sent it (random per start).",
    )
    sess: int | None = Field(
        default=None, ge=1, le=2**53, description="Its MQTT session within the run, from 1."
    )
    n: int | None = Field(
        default=None,
        ge=1,
        le=2**53,
        description="Its number within the run; the will, made at the session's start, sorts "
        "after every status of its session.",
    )
    version: str = Field(default="", max_length=64, description="Agent version.")
    uptime_s: float | None = Field(default=None, ge=0, description="Seconds since agent start.")
    last_seq: int | None = Field(default=None, ge=0, description="Last sequence number queued.")
    outbox: OutboxStats | None = Field(default=None, description="Outbox state.")
    counters: dict[str, int] = Field(
        default_factory=dict, description="Named error and activity counters of the agent."
    )


class Hello(BaseModel):
    """Retained on ``shian/v1/collector/hello``: a collector began a broker session."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = Field(ge=1, le=SCHEMA_VERSION, description="Schema version.")
    session: str = Field(
        pattern=r"^[0-9a-f]{32}$",
        description="Random per collector session: a new one means "
        "boxes send what the collector has not confirmed again, now.",
    )


class Ack(BaseModel):
    """On ``.../cmd/ack``: the collector has committed these sequence ranges of the device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = Field(ge=1, le=SCHEMA_VERSION, description="Schema version.")
    seqs: list[tuple[int, int]] = Field(
        default_factory=list,
        max_length=10_000,
        description="Inclusive [first, last] sequence ranges now stored.",
    )
    snaps: list[str] = Field(
        default_factory=list, max_length=1000, description="Snapshot ids now stored."
    )
