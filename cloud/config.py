"""The collector's config (TOML). Every field has a description; unknown keys are errors.

With no ``[mqtt]`` table the collector starts its own embedded broker (``[embedded_broker]``), so
a demo or a one-machine install needs nothing else. Reference: docs/config.md.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.config import MqttSettings, StrictModel

DEFAULT_PATH = Path("/etc/shian/cloud.toml")


class EmbeddedBroker(StrictModel):
    """The in-process MQTT 3.1.1 broker (amqtt) used when no [mqtt] broker is configured."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=1883, ge=1, le=65535, description="TCP port to listen on.")


class CollectorSettings(StrictModel):
    """How events are taken from the broker and written."""

    share_group: str = Field(
        default="",
        description="When set, subscribe to events as $share/<group>/... so several collectors "
        "split the load (needs a broker with shared subscriptions, e.g. Mosquitto 2).",
    )
    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        description="How long the broker keeps this collector's session and queued messages "
        "while it is away (MQTT 5; 3.1.1 keeps it until a clean connect).",
    )
    batch_max_messages: int = Field(
        default=500, ge=1, description="Most MQTT messages written in one transaction."
    )
    batch_max_wait_s: float = Field(
        default=0.005, ge=0, le=5, description="Longest wait to fill a transaction."
    )


class StoreSettings(StrictModel):
    """Where events, devices and dead letters are kept."""

    path: Path = Field(default=Path("shian-cloud.db"), description="SQLite database file.")
    snapshots_dir: Path | None = Field(
        default=None, description="Evidence JPEGs; default a snapshots folder beside the database."
    )


class WebSettings(StrictModel):
    """The collector's HTTP server: the public ticket page."""

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port; 0 turns the server off.")


class TicketSettings(StrictModel):
    """Verifying the tickets that buyers scan."""

    keys_dir: Path = Field(
        default=Path("keys"),
        description="Holds <device>.key (64 hex digits) for each stall device, made when the "
        "device is registered.",
    )


class CloudConfig(StrictModel):
    """Top level of cloud.toml."""

    mqtt: MqttSettings | None = Field(
        default=None, description="External broker; leave out to use the embedded broker."
    )
    embedded_broker: EmbeddedBroker = Field(
        default_factory=EmbeddedBroker, description="The broker started when [mqtt] is absent."
    )
    collector: CollectorSettings = Field(
        default_factory=CollectorSettings, description="Ingest settings."
    )
    store: StoreSettings = Field(default_factory=StoreSettings, description="Storage.")
    web: WebSettings = Field(default_factory=WebSettings, description="Public pages.")
    tickets: TicketSettings = Field(default_factory=TicketSettings, description="Tickets.")

    def broker(self) -> MqttSettings:
        """The connection the collector uses: the configured broker or the embedded one."""
        if self.mqtt is not None:
            settings = self.mqtt
        else:
            host, port = self.embedded_broker.host, self.embedded_broker.port
            settings = MqttSettings(url=f"mqtt://{host}:{port}", protocol="3.1.1")
        if not settings.client_id:
            settings = settings.model_copy(update={"client_id": "shian-collector"})
        return settings
