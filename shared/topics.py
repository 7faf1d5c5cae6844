"""The MQTT topic scheme (see docs/protocol.md).

shian/v1/dev/{device}/events          edge -> cloud, batches of events, QoS 1
shian/v1/dev/{device}/status          edge -> cloud, retained; last will "offline"
shian/v1/dev/{device}/snap/{event}    edge -> cloud, a JPEG of evidence
shian/v1/dev/{device}/cmd/{name}      cloud -> edge, commands
shian/v1/dev/{device}/live/{stream}   edge -> cloud, a live view's JPEG frame (QoS 0)
shian/v1/alerts/{district}/{site}     cloud -> supervisors
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "shian/v1"
DEV = f"{ROOT}/dev"

_LEVEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAME_RULE = "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"


def check_name(level: str, what: str) -> str:
    """A device, site, district, supervisor or command name: exactly one topic level, safe in
    an ACL line, a file name and a page (so never ``+``, ``#``, ``/``, a space or a newline)."""
    if not isinstance(level, str) or not _LEVEL.fullmatch(level):
        raise ValueError(f"{what} {level!r} is not a valid name ({NAME_RULE})")
    return level


def events(device: str) -> str:
    return f"{DEV}/{check_name(device, 'device')}/events"


def status(device: str) -> str:
    return f"{DEV}/{check_name(device, 'device')}/status"


def snapshot(device: str, event_id: str) -> str:
    return f"{DEV}/{check_name(device, 'device')}/snap/{event_id}"


def command(device: str, name: str) -> str:
    return f"{DEV}/{check_name(device, 'device')}/cmd/{check_name(name, 'command')}"


def live_frame(device: str, stream: str) -> str:
    """A camera without H.264 sends its live view here as JPEG frames, QoS 0."""
    return f"{DEV}/{check_name(device, 'device')}/live/{check_name(stream, 'stream')}"


def commands(device: str) -> str:
    """The filter a device subscribes to for all its commands."""
    return f"{DEV}/{check_name(device, 'device')}/cmd/#"


def alerts(district: str, site: str) -> str:
    return f"{ROOT}/alerts/{check_name(district, 'district')}/{check_name(site, 'site')}"


COLLECTOR_CLOCK = f"{ROOT}/collector/clock"
"""Retained, renewed every ``collector.clock_every_s``: ``{"v": 1, "ts": <the collector's
time>}``, for a box's ``doctor`` to compare its clock with."""

COLLECTOR_HELLO = f"{ROOT}/collector/hello"
"""Retained: a collector's new broker session. Boxes send what is unconfirmed again at once
(a broker restarted without persistence forgot what it took while no collector listened)."""

ALL_EVENTS = f"{DEV}/+/events"
ALL_STATUS = f"{DEV}/+/status"
ALL_SNAPSHOTS = f"{DEV}/+/snap/+"
ALL_LIVE_FRAMES = f"{DEV}/+/live/+"


def shared(group: str | None, topic_filter: str) -> str:
    """A filter for an MQTT shared subscription, so several collectors split the load."""
    if not group:
        return topic_filter
    return f"$share/{check_name(group, 'share group')}/{topic_filter}"


@dataclass(frozen=True)
class DeviceTopic:
    device: str
    channel: str  # events | status | snap | cmd | live
    rest: str  # what follows the channel ("" for events and status)


def parse(topic: str) -> DeviceTopic | None:
    """Split a device topic; ``None`` when the topic is not under ``shian/v1/dev/``."""
    if not topic.startswith(DEV + "/"):
        return None
    parts = topic[len(DEV) + 1 :].split("/", 2)
    if len(parts) < 2 or not _LEVEL.fullmatch(parts[0]):
        return None
    return DeviceTopic(parts[0], parts[1], parts[2] if len(parts) > 2 else "")
