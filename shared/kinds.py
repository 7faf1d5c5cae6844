"""Event kinds: the ``data`` of each kind of event, one pydantic model per kind.

Both sides validate ``data`` against the model of its ``kind``; a kind missing here is an
unknown kind (the collector dead-letters it). Later features add their kinds here, with an
example in ``docs/protocol.md``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class KindData(BaseModel):
    """Base of every kind's data: unknown keys are rejected, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceStarted(KindData):
    """The agent started (after a boot, an upgrade, or a crash and restart by systemd)."""

    version: str = Field(description="Agent software version.", max_length=64)
    pending: int = Field(ge=0, description="Events still undelivered in the outbox at start.")


class TestEvent(KindData):
    """An event queued by hand (``shian-edge emit test``) or by the demo, to prove the path."""

    note: str = Field(default="", max_length=4096, description="Free text.")
    n: int | None = Field(default=None, description="A counter the sender may use.")


KINDS: dict[str, type[KindData]] = {
    "device_started": DeviceStarted,
    "test": TestEvent,
}


def validate_data(kind: str, data: Any) -> KindData:
    """Validate ``data`` for ``kind``; raises ``KeyError`` for an unknown kind."""
    model = KINDS[kind]
    return model.model_validate(data)
