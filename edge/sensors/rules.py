"""What readings mean, on a clock the caller gives (a test controls it):

- :class:`Excursion`: out of range for ``hold_s`` in a row, then back: a fridge above 8 °C for
  fifteen minutes is an alert, a door opened for a minute is not;
- :class:`Silence`: no good reading for ``silent_s``: the sensor is lost (a fault, like a
  scale's), and found again with its first good reading;
- :class:`Cycle`: a disinfection cabinet's run, from the moment it passes ``min_c`` until it
  falls below again: proven when it stayed hot enough long enough;
- :class:`Minutes`: readings summarised per minute (what is sent; the raw series stays on the
  box).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class Excursion:
    low: float | None
    high: float | None
    hold_s: float
    since: float | None = None
    raised: bool = False
    worst: float | None = None

    def feed(self, value: float, now: float) -> str | None:
        """``raised`` or ``cleared`` when the state changes, else None."""
        out = (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        )
        if not out:
            self.since, self.worst = None, None
            if self.raised:
                self.raised = False
                return "cleared"
            return None
        if self.since is None:
            self.since = now
        far = value if self.worst is None else max(self.worst, value, key=self._distance)
        self.worst = far
        if not self.raised and now - self.since >= self.hold_s:
            self.raised = True
            return "raised"
        return None

    def _distance(self, value: float) -> float:
        above = value - self.high if self.high is not None else -math.inf
        below = self.low - value if self.low is not None else -math.inf
        return max(above, below)


@dataclass
class Silence:
    silent_s: float
    last_ok: float
    lost: bool = False

    def ok(self, now: float) -> bool:
        """A good reading; True when it ends a fault."""
        self.last_ok = now
        if self.lost:
            self.lost = False
            return True
        return False

    def failed(self, now: float) -> bool:
        """A failed read; True when it starts a fault."""
        if not self.lost and now - self.last_ok >= self.silent_s:
            self.lost = True
            return True
        return False


@dataclass
class Cycle:
    min_c: float
    hold_s: float
    began: float | None = None
    last_hot: float = 0.0
    peak: float = -math.inf

    def feed(self, value: float, now: float) -> dict[str, Any] | None:
        """A finished run (when the temperature falls back below ``min_c``), else None. Its
        time is from the first hot reading to the last: what was seen, not guessed."""
        if value >= self.min_c:
            if self.began is None:
                self.began, self.peak = now, value
            self.peak, self.last_hot = max(self.peak, value), now
            return None
        if self.began is None:
            return None
        held = min(self.last_hot - self.began, 86400.0)
        run = {"began": iso(self.began), "held_s": round(held, 1), "peak_c": self.peak,
               "min_c": self.min_c, "hold_s": self.hold_s,
               "proven": held >= self.hold_s}  # fmt: skip
        self.began, self.peak = None, -math.inf
        return run


@dataclass
class Minutes:
    """Per-minute min, mean and max of each quantity."""

    minute: int | None = None
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, reading: dict[str, float], now: float) -> dict[str, Any] | None:
        """The summary of the minute just ended, when ``now`` is in a new one."""
        m = int(now // 60)
        done = None
        if self.minute is not None and m != self.minute and self.values:
            done = self.summary()
        if m != self.minute:
            self.minute, self.values = m, {}
        for q, v in reading.items():
            self.values.setdefault(q, []).append(v)
        return done

    def summary(self) -> dict[str, Any]:
        assert self.minute is not None
        values = {
            q: {"min": min(vs), "max": max(vs), "mean": round(sum(vs) / len(vs), 2), "n": len(vs)}
            for q, vs in self.values.items()
        }
        return {"minute": iso(self.minute * 60), "values": values}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
