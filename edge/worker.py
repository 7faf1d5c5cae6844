"""A worker thread of the agent: start, stop, running, and ``alive_at`` for the watchdog."""

from __future__ import annotations

import threading
import time


class Worker:
    """Subclasses write ``_run`` and look at ``self._stop``; they refresh ``alive_at`` as they
    go, so that the agent can tell a hung worker from a busy one."""

    def __init__(self, name: str, join_s: float = 5) -> None:
        self.alive_at = time.monotonic()
        self._stop = threading.Event()
        self._join_s = join_s
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._join_s)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
