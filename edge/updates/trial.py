"""An update on trial: the agent commits it once healthy for the update's set time, or
exits to have it rolled back (``edge.updates.launch``).

Healthy means: every worker alive (as for systemd's watchdog), a broker session up, and the
collector has confirmed events since the start (the whole path works, not only the box).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from edge.updates.receive import outcome
from edge.updates.state import UpdateState

log = logging.getLogger("shian.updates")


class Trial:
    def __init__(
        self,
        state: UpdateState,
        trial: dict[str, Any],
        healthy: Callable[[], bool],
        report: Callable[[dict[str, Any]], None],
        fail: Callable[[], None],
        settled: Callable[[], None],
    ) -> None:
        """``settled``: called once the update is applied for good (the updater may take the
        next one)."""
        self.state, self.trial = state, trial
        self.healthy, self.report, self.fail = healthy, report, fail
        self.settled = settled
        self.health_s = float(trial["update"]["health_s"])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shian-trial", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        if self._stop.wait(self.health_s):
            return  # stopped first: the next start rolls it back
        update = self.trial["update"]
        # a moment's reconnect at the end of the set time is not a failed update: it gets
        # as long again (at most 30 s) to be healthy once more
        deadline = time.monotonic() + min(30.0, self.health_s)
        while not self.healthy():
            if time.monotonic() >= deadline or self._stop.wait(1.0):
                if not self._stop.is_set():
                    log.error("not healthy after update %s: exiting to roll back", update["id"])
                    self.fail()
                return
        # committed first, in one write: a crash from here on reports it applied (at start)
        self.state.set_trial({**self.trial, "committed": True})
        try:
            self.report(outcome(update, "applied", f"healthy for {self.health_s:g} s"))
            self.state.set_trial(None)
        except Exception as exc:  # a full disk: the next start reports it
            log.error("update %s applied; its report waits: %s", update["id"], exc)
        finally:
            self.settled()
        log.info("update %s applied for good", update["id"])
