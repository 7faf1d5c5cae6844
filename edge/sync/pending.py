"""What the sync loop must remember between the broker's PUBACK and the collector's confirmation.

Two things, both kept in memory by the sync thread and never shared with paho:

- :class:`Unconfirmed` times what the broker took and the collector has not confirmed on the
  monotonic clock. The wall clock of a box is stepped by NTP or by hand; a resend timer on it
  would hold broker-lost events for as long as the clock went back (hours), or fire at once.
- :class:`OutboxWrites` makes the loop's own outbox writes (delivered and confirmed marks). A
  write the disk refuses is kept and tried again after a growing delay; it never ends the MQTT
  session (which would reconnect and send everything again, several times a second). Losing
  these marks in a crash costs a resend, which the collector drops as duplicates.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable

from edge.store.outbox import Outbox, is_disk_full
from edge.store.snapshots import SnapshotQueue
from shared.mqtt import Backoff

log = logging.getLogger("shian.sync")


class Unconfirmed:
    """PUBACK times (monotonic) of events and snapshots not yet confirmed by the collector."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.events: dict[int, float] = {}
        self.snaps: dict[str, float] = {}

    def acked(self, seqs: Iterable[int]) -> None:
        now = self.clock()
        for seq in seqs:
            self.events.setdefault(seq, now)

    def snap_acked(self, snap_id: str) -> None:
        self.snaps.setdefault(snap_id, self.clock())

    def confirmed(self, ranges: Iterable[tuple[int, int]], snaps: Iterable[str]) -> None:
        for lo, hi in ranges:
            if hi - lo < len(self.events):
                for seq in range(lo, hi + 1):
                    self.events.pop(seq, None)
            else:
                self.events = {s: t for s, t in self.events.items() if not lo <= s <= hi}
        for snap_id in snaps:
            self.snaps.pop(snap_id, None)

    def waited(self) -> float:
        """Seconds since the oldest PUBACK that has no confirmation (0 when none waits). The
        dicts keep insertion order, which is time order: the first of each is its oldest."""
        firsts = [next(iter(d.values())) for d in (self.events, self.snaps) if d]
        return self.clock() - min(firsts) if firsts else 0.0


class OutboxWrites:
    """The sync loop's outbox writes, retried with a backoff while the disk refuses them."""

    def __init__(self, outbox: Outbox, snapshots: SnapshotQueue | None) -> None:
        self.outbox, self.snapshots = outbox, snapshots
        self.delivered: list[int] = []
        self.confirms: list[tuple[int, int]] = []
        self.snap_delivered: list[str] = []
        self.snap_confirms: list[str] = []
        self.confirmed_events = 0
        self.failing: str | None = None
        self._full = False  # the last failure was a full disk
        self._next_try = 0.0
        self._backoff = Backoff(1.0, 30.0)

    @property
    def waiting(self) -> bool:
        return bool(self.delivered or self.confirms or self.snap_delivered or self.snap_confirms)

    def flush(self) -> None:
        """Write what waits, unless the last try failed too recently."""
        if not self.waiting:
            return
        freed = self._full and not self.outbox.disk_full  # an event was queued since: room
        if time.monotonic() < self._next_try and not freed:
            return
        try:
            if self.delivered:
                self.outbox.mark_delivered(self.delivered)
                self.delivered = []
            if self.confirms:
                self.confirmed_events += self.outbox.mark_confirmed(self.confirms)
                self.confirms = []
            if self.snapshots is not None:
                while self.snap_delivered:
                    self.snapshots.mark_delivered(self.snap_delivered[0])
                    self.snap_delivered.pop(0)
                if self.snap_confirms:
                    self.snapshots.mark_confirmed(self.snap_confirms)
                    self.snap_confirms = []
        except sqlite3.OperationalError as exc:
            self._failed(exc)
            return
        if self.failing is not None:
            log.info("the outbox takes writes again (after: %s)", self.failing)
        self.failing, self._full = None, False
        self._backoff.reset()

    def maintain(self) -> None:
        """The outbox's expiry and pruning, under the same rule."""
        try:
            self.outbox.maintain()
        except sqlite3.OperationalError as exc:
            self._failed(exc)

    def _failed(self, exc: sqlite3.OperationalError) -> None:
        why = str(exc)
        self._full = is_disk_full(exc)
        if self._full:
            self.outbox.disk_full = True  # the heartbeat says so
            if self.outbox.reserve.release():
                return  # room for the marks now: try again at once
        delay = self._backoff.next_delay()
        self._next_try = time.monotonic() + delay
        if self.failing is None:
            log.warning("the outbox refuses writes (%s); trying again, next in %.0f s", why, delay)
        self.failing = why
