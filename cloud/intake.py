"""Collectors as competing consumers on a NATS cluster (``[collector] intake_urls``).

NATS speaks MQTT 3.1.1 to the boxes but has no MQTT shared subscriptions; its own queue
groups are the same thing, native: each message of a subject reaches one member of the group.
So a collector on the cluster takes what the boxes publish (events, snapshots, statuses,
supervisors' commands) as a member of ``share_group`` over the NATS protocol (nats-py, the
NATS maintainers' client), and keeps its MQTT session for what it publishes (confirmations,
alerts, its hello, its clock). An MQTT topic ``shian/v1/dev/box-1/events`` is the NATS subject
``shian.v1.dev.box-1.events``.

A queue group delivers at most once: a collector that dies holding messages loses them at the
broker. Nothing is lost in the end: a box sends again what is not confirmed after its
``confirm_timeout_s``, and the store keeps each event once (docs/scaling.md measures the wait).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("shian.intake")

SUBJECTS = (
    "shian.v1.dev.*.events",
    "shian.v1.dev.*.snap.*",
    "shian.v1.dev.*.status",
    "shian.v1.sup.*.cmd",
)


def topic_of(subject: str) -> str:
    """The MQTT topic a NATS subject came from (MQTT levels hold no ``.``: the names are
    checked, ``shared.topics``)."""
    return subject.replace(".", "/")


MAX_PENDING = 20_000
"""Messages the client library may hold for this member before it drops (the boxes send
them again, unconfirmed)."""


class NatsIntake:
    """A member of the collectors' queue group, on its own thread and event loop.

    ``deliver`` is called on that thread with (topic, payload) for each message, but only
    while ``backlog()`` (what the collector has yet to write) is under ``max_backlog``: a slow
    or absent database holds the intake back instead of filling the collector's memory, and
    what then waits in the client past ``MAX_PENDING`` is dropped, to come again from the
    boxes. ``on_state`` is told when the intake can hear the boxes (True) or not (False)."""

    def __init__(
        self,
        urls: list[str],
        group: str,
        deliver: Callable[[str, bytes], None],
        user: str = "",
        password: str | None = None,
        *,
        backlog: Callable[[], int] = lambda: 0,
        max_backlog: int = 5_000,
        on_state: Callable[[bool], None] = lambda _up: None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.urls, self.group, self.deliver = urls, group, deliver
        self.user, self.password, self.tls = user, password, tls
        self.backlog, self.max_backlog, self.on_state = backlog, max_backlog, on_state
        self.connected = threading.Event()
        self.counters = {"messages": 0, "reconnects": 0}
        self._loop = asyncio.new_event_loop()
        self._nc: Any = None
        self._thread = threading.Thread(target=self._run, name="collector-intake", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 30) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"no NATS server of {self.urls} answered in {timeout:.0f} s")
        if self._error is not None:
            raise ConnectionError(f"NATS intake: {self._error}") from self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._connect())
        except Exception as exc:  # said to start(), which raises it
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    async def _connect(self) -> None:
        import nats

        async def reconnected() -> None:
            self.counters["reconnects"] += 1
            self.connected.set()
            self.on_state(True)
            log.info("intake reconnected to %s", self._nc.connected_url.netloc)

        async def disconnected() -> None:
            self.connected.clear()
            self.on_state(False)
            log.warning("intake lost its NATS server; reconnecting")

        async def error(exc: Exception) -> None:
            log.warning("intake: %s", exc)

        opts: dict[str, Any] = {
            "servers": self.urls,
            "name": f"shian-collector-{self.group}",
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.5,
            "connect_timeout": 5,
            "reconnected_cb": reconnected,
            "disconnected_cb": disconnected,
            "error_cb": error,
        }
        if self.user:
            opts.update(user=self.user, password=self.password or "")
        if self.tls is not None:
            opts["tls"] = self.tls
        self._nc = await nats.connect(**opts)

        async def on_message(msg: Any) -> None:
            while self.backlog() >= self.max_backlog:  # the writer is behind: hold back
                await asyncio.sleep(0.05)
            self.counters["messages"] += 1
            self.deliver(topic_of(msg.subject), bytes(msg.data))

        for subject in SUBJECTS:
            await self._nc.subscribe(
                subject,
                queue=self.group,
                cb=on_message,
                pending_msgs_limit=MAX_PENDING,
                pending_bytes_limit=64 * 1024 * 1024,
            )
        await self._nc.flush()  # the subscriptions are known to the server before we go on
        self.connected.set()
        self.on_state(True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Leave the group: drain (the messages already delivered go to ``deliver``), close.
        Safe when it never started."""
        if not self._thread.is_alive():
            return
        if self._nc is not None and self._loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._nc.drain(), self._loop)
            try:
                fut.result(10)
            except Exception:  # a server already gone: nothing more will come
                log.debug("intake drain", exc_info=True)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
