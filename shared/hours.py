"""Daily windows of local time (a rule's active hours, a camera's public hours): the box and
the cloud read them the same way."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Window(Protocol):
    @property
    def days(self) -> Sequence[str]: ...
    @property
    def start(self) -> str: ...
    @property
    def end(self) -> str: ...


def minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def in_window(w: Window, local: datetime) -> bool:
    """Whether ``local`` (the site's local time) is inside ``w``; an ``end`` before ``start``
    wraps past midnight, and the part after midnight belongs to the previous day's window."""
    start, end, now = minutes(w.start), minutes(w.end), local.hour * 60 + local.minute
    day = DAYS[local.weekday()]
    if start <= end:
        return day in w.days and start <= now < end
    if now >= start:
        return day in w.days
    yesterday = DAYS[(local.weekday() - 1) % 7]
    return now < end and yesterday in w.days
