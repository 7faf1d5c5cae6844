"""The live views' part of the collector process: the sessions, their broker session, and the
tick that ends and renews them."""

from __future__ import annotations

import logging
import threading

from cloud.config import CloudConfig
from cloud.db import Db
from cloud.live.relay import LiveRelay
from cloud.live.sessions import LiveSessions

log = logging.getLogger("shian.live")


class LiveService:
    def __init__(self, cfg: CloudConfig, db: Db) -> None:
        self.relay = LiveRelay(cfg.broker(), self._frame)
        self.sessions = LiveSessions(cfg.live, db, self.relay.send)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-tick", daemon=True)

    def _frame(self, device: str, stream: str, jpeg: bytes) -> None:
        why = self.sessions.frame(device, stream, jpeg)
        if why is not None:
            log.debug("live frame from %s refused: %s", device, why)

    def start(self) -> None:
        self.relay.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.relay.stop()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.sessions.tick()
            except Exception:  # a database hiccup: the next tick tries again
                log.exception("live tick failed")
