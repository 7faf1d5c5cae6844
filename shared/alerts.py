"""Alerts as supervisors see them, and the commands that move them along.

    shian/v1/alerts/{district}/{site}        every change of an alert (QoS 1)
    shian/v1/escalations/{district}          critical and unacknowledged, or overdue
    shian/v1/sup/{supervisor}/cmd            a supervisor's command
    shian/v1/sup/{supervisor}/reply          the answer: done, or refused with the reason
    shian/v1/dev/{device}/cmd/notice/{id}    a rectification notice for the business (retained)
    shian/v1/dev/{device}/cmd/reply          the answer to a box's rectification

An alert's lifecycle (the closed loop of city practice):

    open -> acknowledged -> rectification_requested -> rectified -> closed (verified)
                                                                 -> open (reopened)

System conditions (a camera or device offline, a scale or printer fault, a tampered camera)
close by themselves when the condition ends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared import SCHEMA_VERSION, topics

Severity = Literal["critical", "major", "minor", "info"]
SEVERITY_RANK = {"info": 0, "minor": 1, "major": 2, "critical": 3}
State = Literal["open", "acknowledged", "rectification_requested", "rectified", "closed"]
Action = Literal["ack", "request_rectification", "rectify", "verify", "close", "reopen"]

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "ack": (("open",), "acknowledged"),
    "request_rectification": (("open", "acknowledged"), "rectification_requested"),
    "rectify": (("rectification_requested",), "rectified"),
    "verify": (("rectified",), "closed"),
    "close": (("open", "acknowledged", "rectification_requested", "rectified"), "closed"),
    "reopen": (("rectified", "closed"), "open"),
}


def transition(state: str, action: str) -> str:
    """The next state, or ValueError saying why the action is refused."""
    if action not in TRANSITIONS:
        raise ValueError(f"unknown action {action!r}")
    sources, target = TRANSITIONS[action]
    if state not in sources:
        raise ValueError(
            f"cannot {action} an alert that is {state} (only from: {', '.join(sources)})"
        )
    return target


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: str = Field(description="UTC time of the step.")
    state: str = Field(description="State after the step.")
    actor: str = Field(description="Who: a supervisor, a device, or system.")
    note: str = Field(default="", description="What they said.")
    due: str | None = Field(
        default=None, description="A rectification's deadline (UTC), set when it is requested."
    )
    photos: list[str] = Field(
        default_factory=list,
        description="Photos of the step (URLs): the business's rectification, an officer's "
        "verification or reopening, a patrol's finding.",
    )


class OutageBox(BaseModel):
    """One box of a district incident (type ``district_outage``)."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(description="The box.")
    site: str = Field(description="Its site.")
    since: str | None = Field(description="UTC time it went offline.")
    back: str | None = Field(default=None, description="UTC time it came back, if it has.")


class AlertMessage(BaseModel):
    """Published on ``shian/v1/alerts/{district}/{site}`` at every change."""

    model_config = ConfigDict(extra="forbid")

    v: int = Field(default=SCHEMA_VERSION, description="Schema version.")
    id: str = Field(description="Alert id.")
    version: int = Field(ge=1, description="Grows with every change: (id, version) dedupes.")
    state: State = Field(description="Lifecycle state.")
    severity: Severity = Field(description="critical, major, minor or info.")
    type: str = Field(description="Alert type: a violation type, device_offline, ...")
    district: str = Field(description="District.")
    site: str = Field(description="Site.")
    device: str | None = Field(default=None, description="Device, when one is concerned.")
    camera: str | None = Field(default=None, description="Camera, for camera alerts.")
    source: str = Field(description="What raised it (camera, device, certificate number).")
    title: str = Field(description="One line for a phone notification.")
    first_seen: str = Field(description="UTC time first seen.")
    last_seen: str = Field(description="UTC time last seen.")
    count: int = Field(ge=1, description="Occurrences while open.")
    due: str | None = Field(default=None, description="Deadline of the current step, UTC.")
    escalated: int = Field(default=0, ge=0, description="Times escalated.")
    snapshot_url: str | None = Field(default=None, description="Evidence of the latest one.")
    history: list[Step] = Field(default_factory=list, description="Every step, oldest first.")
    boxes: list[OutageBox] = Field(
        default_factory=list, description="For a district incident: every box in it."
    )


class SupervisorCommand(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: int = Field(ge=1, le=SCHEMA_VERSION)
    id: str = Field(min_length=1, max_length=64, description="Chosen by the sender; echoed.")
    alert: str = Field(max_length=64, description="Alert id.")
    action: Action = Field(description="What to do.")
    note: str = Field(default="", max_length=1000, description="A remark for the history.")
    due_s: float | None = Field(default=None, gt=0, description="Deadline for a request.")


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: int = Field(default=SCHEMA_VERSION)
    id: str = Field(description="The command (or event) answered.")
    ok: bool = Field(description="Done, or refused.")
    reason: str = Field(default="", description="Why it was refused.")
    alert: dict[str, Any] | None = Field(default=None, description="The alert afterwards.")


def alerts_topic(district: str, site: str) -> str:
    return topics.alerts(district, site)


def escalations_topic(district: str) -> str:
    return f"{topics.ROOT}/escalations/{topics.check_name(district, 'district')}"


def supervisor_topic(name: str, channel: Literal["cmd", "reply"]) -> str:
    return f"{topics.ROOT}/sup/{topics.check_name(name, 'supervisor')}/{channel}"


ALL_SUPERVISOR_COMMANDS = f"{topics.ROOT}/sup/+/cmd"


def notice_topic(device: str, alert_id: str) -> str:
    return f"{topics.command(device, 'notice')}/{alert_id}"
