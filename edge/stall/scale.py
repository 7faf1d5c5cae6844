"""The scale reader: a serial port (any pyserial URL), frames decoded by a profile, and the
stable weight.

It never dies on a serial error: the reason is logged, a ``scale_fault`` event is queued once
per outage, and the port is opened again with backoff until it returns (``scale_fault`` with
state ``recovered``). Frame and checksum errors are counted for the status heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge.stall.framing import FrameDecoder, Reading
from edge.stall.profiles import ScaleProfile, Stability, to_bytes
from edge.worker import Worker
from shared.mqtt import Backoff

log = logging.getLogger("shian.scale")


@dataclass(frozen=True)
class Weight:
    """What the vendor's screen shows: the weight and whether it may be sold."""

    state: str  # stable | unstable | zero | negative | overload | no_data
    grams: float | None = None
    net: bool = False
    at: float = field(default_factory=time.monotonic)

    @property
    def sellable(self) -> bool:
        return self.state == "stable" and self.grams is not None and self.grams > 0

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "grams": self.grams,
            "net": self.net,
            "sellable": self.sellable,
        }


class StableWeight:
    """N consecutive stable frames within a tolerance make a stable weight."""

    def __init__(self, rule: Stability) -> None:
        self.rule = rule
        self.window: deque[float] = deque(maxlen=rule.frames)

    def push(self, r: Reading) -> Weight:
        """The weight after reading ``r`` (an ``other`` frame, which carries no weight, is not
        pushed: the reader keeps the weight it had)."""
        if r.error:  # N stable frames in a row means no bad frame between them either
            self.window.clear()
            return Weight("unstable")
        if r.overload:
            self.window.clear()
            return Weight("overload", net=r.net)
        if r.underload:
            self.window.clear()
            return Weight("negative", net=r.net)
        if r.grams is None or not r.stable:
            self.window.clear()
            return Weight("unstable", r.grams, r.net)
        self.window.append(r.grams)
        if len(self.window) < self.rule.frames:
            return Weight("unstable", r.grams, r.net)
        if max(self.window) - min(self.window) > self.rule.tolerance_g:
            return Weight("unstable", r.grams, r.net)
        grams = r.grams
        if abs(grams) < self.rule.zero_g:
            return Weight("zero", grams, r.net)
        if grams < 0:
            return Weight("negative", grams, r.net)
        return Weight("stable", grams, r.net)


FaultFn = Callable[[str, str], None]
"""(state: "lost" | "recovered", reason) for the scale_fault event."""


class ScaleReader(Worker):
    """A thread reading one scale; ``weight`` is the latest state, listeners get each one."""

    def __init__(
        self,
        url: str,
        profile: ScaleProfile,
        stability: Stability | None = None,
        on_fault: FaultFn | None = None,
    ) -> None:
        self.url = url
        self.profile = profile
        self.stability = stability or profile.stability
        self.on_fault = on_fault
        self.weight = Weight("no_data")
        self.listeners: list[Callable[[Weight, Reading], None]] = []
        self.counters = {
            "scale_frames": 0,
            "scale_frame_errors": 0,
            "scale_checksum_errors": 0,
            "scale_port_errors": 0,
        }
        self._changed = threading.Condition()
        super().__init__("shian-scale")

    def wait_for(self, predicate: Callable[[Weight], bool], timeout: float) -> Weight:
        """Wait (at most ``timeout`` s) for a weight that satisfies ``predicate``."""
        with self._changed:
            self._changed.wait_for(lambda: predicate(self.weight), timeout)
            return self.weight

    def _set(self, w: Weight) -> None:
        with self._changed:
            self.weight = w
            self._changed.notify_all()

    def _open(self) -> Any:
        import serial  # pyserial; imported here so the rest of the agent runs without it

        s = self.profile.serial
        return serial.serial_for_url(
            self.url,
            baudrate=s.baudrate,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=s.stopbits,
            timeout=0.05,
        )

    def _run(self) -> None:
        backoff = Backoff(0.2, 5.0)
        lost_reason: str | None = None
        while not self._stop.is_set():
            self.alive_at = time.monotonic()
            try:
                port = self._open()
            except Exception as exc:  # SerialException, OSError, ValueError from a bad URL
                lost_reason = self._fault(lost_reason, f"cannot open {self.url}: {exc}")
                self._stop.wait(backoff.next_delay())
                continue
            if lost_reason is not None:
                log.info("scale on %s is back", self.url)
                if self.on_fault:
                    self.on_fault("recovered", lost_reason)
                lost_reason = None
            backoff.reset()
            try:
                self._read(port)
            except Exception as exc:
                self._set(Weight("no_data"))  # before the report: no one may sell on it after
                lost_reason = self._fault(lost_reason, f"{self.url}: {exc}")
            finally:
                try:
                    port.close()
                except Exception:
                    log.debug("closing %s", self.url, exc_info=True)
            self._set(Weight("no_data"))
            if not self._stop.is_set():
                self._stop.wait(backoff.next_delay())

    def _fault(self, already: str | None, reason: str) -> str:
        self.counters["scale_port_errors"] += 1
        if already is None:
            log.warning("scale lost: %s", reason)
            if self.on_fault:
                self.on_fault("lost", reason)
            return reason
        log.debug("scale still away: %s", reason)
        return already

    def _read(self, port: Any) -> None:
        decoder = FrameDecoder(self.profile)
        stable = StableWeight(self.stability)
        poll = self.profile.poll
        request = to_bytes(poll.request) if poll else b""
        next_poll = 0.0
        while not self._stop.is_set():
            now = self.alive_at = time.monotonic()
            if poll and now >= next_poll:
                port.write(request)
                next_poll = now + poll.interval_s
            data = port.read(max(1, port.in_waiting))
            if not data:
                continue
            for r in decoder.feed(data):
                self._count(r)
                if r.other:
                    continue  # a valid reply with no weight: the weight stays what it was
                w = stable.push(r)
                self._set(w)
                for fn in self.listeners:
                    fn(w, r)

    def _count(self, r: Reading) -> None:
        self.counters["scale_frames"] += 1
        if r.checksum_failed:
            self.counters["scale_checksum_errors"] += 1
        elif r.error:
            self.counters["scale_frame_errors"] += 1
