"""The embedded MQTT broker (amqtt, MQTT 3.1.1) for a collector with no broker configured.

It lets ``make demo`` and a one-machine install run with nothing else installed. It keeps
sessions in memory only and has no passwords and no ACLs, so it listens on loopback only (the
config refuses anything else); boxes on a network use Mosquitto (docs/installing.md). The
collector still takes each box's identity from its registry, never from its messages.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from cloud.config import EmbeddedBroker
from shared.config import is_loopback

log = logging.getLogger("shian.broker")


class BrokerThread:
    """Runs amqtt in its own thread and event loop."""

    def __init__(self, cfg: EmbeddedBroker) -> None:
        self.cfg = cfg
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="embedded-broker", daemon=True)

    def start(self, timeout: float = 15) -> None:
        if not is_loopback(self.cfg.host):  # the config refuses it too; this is the last word
            raise RuntimeError(f"the embedded broker listens on loopback only, not {self.cfg.host}")
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("embedded broker did not start in time")
        if self._error is not None:
            raise RuntimeError(
                f"embedded broker cannot listen on {self.cfg.host}:{self.cfg.port}: {self._error}"
            )
        log.info("embedded MQTT broker listening on %s:%d", self.cfg.host, self.cfg.port)

    def _run(self) -> None:
        from amqtt.broker import Broker  # imported here: only this mode needs it

        # amqtt logs every client connect at INFO; keep our logs readable.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            self._broker = Broker(
                {
                    "listeners": {
                        "default": {"type": "tcp", "bind": f"{self.cfg.host}:{self.cfg.port}"}
                    },
                    "plugins": {
                        "amqtt.plugins.authentication.AnonymousAuthPlugin": {
                            "allow_anonymous": True
                        }
                    },
                }
            )
            await self._broker.start()

        try:
            loop.run_until_complete(main())
        except BaseException as exc:  # report bind errors to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._broker is None:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
        try:
            fut.result(10)
        except Exception:
            log.exception("embedded broker shutdown")
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(5)
