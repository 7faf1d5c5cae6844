"""The collector's alert publisher: sends the alert outbox to the broker from a thread of its own.

It reads the database (the publisher lease, the queued messages, their sent marks), so it must
not run in the collector's network thread: a locked or slow database would hold that thread,
the session would end, and a session's end is when the broker may drop what it queued. Here a
store that fails only delays alerts: the publisher says so and tries again, and the session
stays up. paho's ``publish`` is safe from any thread; PUBACKs come back through :meth:`puback`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from cloud.store import Store

log = logging.getLogger("shian.collector")


class AlertPublisher:
    """One per collector; publishes only while this collector holds the publisher lease."""

    def __init__(self, store: Store, holder: str, lease_s: float) -> None:
        self.store, self.holder, self.lease_s = store, holder, lease_s
        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-pub", daemon=True)
        self._lease_check, self._is_publisher = 0.0, False
        self.failing: str | None = None

    # -- from other threads -------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._q.put(("wake",))
        self._thread.join(10)

    def attach(self, client: Any) -> None:
        """A session began on ``client``: send what is queued through it."""
        self._q.put(("attach", client))

    def detach(self) -> None:
        self._q.put(("detach",))

    def wake(self) -> None:
        self._q.put(("wake",))

    def puback(self, mid: int, failed: bool) -> None:
        self._q.put(("puback", mid, failed))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- its thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        client: Any = None
        inflight: dict[int, int] = {}  # mid -> alert outbox seq
        sent: list[int] = []
        cursor = 0
        while not self._stop.is_set():
            items: list[tuple[Any, ...]] = []
            try:
                items.append(self._q.get(timeout=0.2))
                while True:
                    items.append(self._q.get_nowait())
            except queue.Empty:
                pass
            for it in items:
                if it[0] in ("attach", "detach"):
                    client = it[1] if it[0] == "attach" else None
                    inflight.clear()
                    cursor = 0  # a new session sends again whatever was not marked sent
                elif it[0] == "puback" and it[1] in inflight:
                    seq = inflight.pop(it[1])
                    if not it[2]:  # refused by the broker: sent again with the next session
                        sent.append(seq)
            try:
                if sent:  # written even between sessions: what the broker took is not resent
                    self.store.outgoing.mark_sent(sent)
                    sent = []
                if client is not None:
                    cursor = self._publish(client, inflight, cursor)
            except Exception as exc:
                if self.failing is None:
                    log.warning("alerts wait: the store does not answer (%s); trying again", exc)
                self.failing = str(exc)
                self._stop.wait(1.0)
                continue
            if self.failing is not None:
                log.info("alerts flow again")
                self.failing = None
        self._last_marks(sent)

    def _last_marks(self, sent: list[int]) -> None:
        """At stop: what the broker took is marked, so a restart does not send it again."""
        try:
            if sent:
                self.store.outgoing.mark_sent(sent)
        except Exception as exc:
            log.warning("alert messages %s may be sent again after the restart: %s", sent, exc)

    def _lease(self) -> bool:
        """Whether this collector publishes (one per shared database: the holder of the lease,
        renewed every third of its length)."""
        now = time.monotonic()
        if now >= self._lease_check:
            self._is_publisher = self.store.outgoing.hold_lease(
                "alert-publisher", self.holder, self.lease_s
            )
            self._lease_check = now + self.lease_s / 3
        return self._is_publisher

    def _publish(self, client: Any, inflight: dict[int, int], cursor: int) -> int:
        if len(inflight) >= 50 or not self._lease():
            return cursor
        for seq, topic, payload, retain in self.store.outgoing.pending(cursor, 100):
            info = client.publish(topic, payload, qos=1, retain=bool(retain))
            if info.rc != 0:
                break
            inflight[info.mid] = seq
            cursor = seq
        return cursor
