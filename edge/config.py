"""The edge agent's config (TOML). Every field has a description; unknown keys are errors.

Reference: docs/config.md. Example: ``shian-edge config validate --config /etc/shian/edge.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from shared.codec import BATCH_OVERHEAD, MAX_EVENT_BYTES, MAX_MESSAGE_BYTES
from shared.config import MqttSettings, StrictModel
from shared.models import DeviceId, SiteId

DEFAULT_PATH = Path("/etc/shian/edge.toml")


class OutboxSettings(StrictModel):
    """Bounds of the local outbox and what happens when it is full."""

    max_events: int = Field(
        default=200_000, ge=10, description="Most unconfirmed events kept (about a week offline)."
    )
    max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=64 * 1024, description="Most bytes of unconfirmed events."
    )
    max_age_s: float = Field(
        default=30 * 86400, gt=0, description="Unconfirmed events older than this are expired."
    )
    when_full: Literal["drop_oldest", "reject_new"] = Field(
        default="drop_oldest",
        description="drop_oldest: make room by deleting the oldest unconfirmed events (counted as "
        "dropped); reject_new: refuse the new event with an error (counted as rejected).",
    )
    keep_confirmed_s: float = Field(
        default=3600, ge=0, description="Keep confirmed events this long for local inspection."
    )


class SyncSettings(StrictModel):
    """How the outbox is sent to the broker."""

    batch_max_events: int = Field(default=100, ge=1, le=10_000, description="Events per message.")
    batch_max_bytes: int = Field(
        default=64 * 1024,
        ge=BATCH_OVERHEAD + MAX_EVENT_BYTES,
        le=MAX_MESSAGE_BYTES,
        description="Largest message payload, bytes.",
    )
    inflight_window: int = Field(
        default=16, ge=1, le=1000, description="Messages published and not yet acknowledged."
    )
    poll_interval_s: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="How often to look for events queued by other processes (shian-edge emit); "
        "events queued inside the agent are sent at once.",
    )
    heartbeat_s: float = Field(default=30, ge=1, description="Seconds between status heartbeats.")
    confirm_timeout_s: float = Field(
        default=30,
        ge=0.5,
        description="Send again events the broker acknowledged but the collector has not "
        "confirmed after this long; the wait doubles while no confirmation comes (to 1 hour).",
    )


class DemoSettings(StrictModel):
    """A built-in source of sample events, for demos and installers."""

    sample_every_s: float = Field(
        default=0, ge=0, description="Queue a `test` event this often; 0 turns it off."
    )
    sample_count: int = Field(
        default=0, ge=0, description="Stop after this many sample events; 0 means no limit."
    )


class EdgeConfig(StrictModel):
    """Top level of edge.toml."""

    device: DeviceId = Field(description="This box's device id (unique in the city).")
    site: SiteId = Field(description="The kitchen or stall this box serves.")
    data_dir: Path = Field(
        default=Path("/var/lib/shian"), description="Where the outbox and other state live."
    )
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="Broker connection.")
    outbox: OutboxSettings = Field(default_factory=OutboxSettings, description="Outbox bounds.")
    sync: SyncSettings = Field(default_factory=SyncSettings, description="Sending.")
    demo: DemoSettings = Field(default_factory=DemoSettings, description="Sample events.")

    @model_validator(mode="after")
    def _client_id(self) -> EdgeConfig:
        if not self.mqtt.client_id:
            self.mqtt.client_id = self.device
        return self

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.db"
