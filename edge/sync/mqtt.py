"""Edge sync: from the outbox to the broker, at QoS 1, losing nothing.

The outbox, not paho, is the source of truth. Each MQTT session uses a fresh paho client with a
clean session; whatever the cloud has not confirmed (in the last session, or before a restart)
is read again from the outbox and sent again, and the collector drops duplicates by event id.
Rows are marked delivered when the PUBACK for the message carrying them arrives, matched by
``mid`` in ``on_publish`` (a publish made while disconnected never resolves its
``MQTTMessageInfo``, so nothing waits on one), and confirmed when the collector says on
``cmd/ack`` that it committed them. Delivered rows still unconfirmed after
``confirm_timeout_s`` (on the monotonic clock) are sent again: the broker may have acknowledged
a message it then lost (a restart without persistence before the collector had subscribed
again). The loop's own outbox writes never end a session (``edge.sync.pending``).

Statuses say where they stand without the box's clock: ``run`` (this agent process), ``sess``
(its MQTT session, counted from 1) and ``n`` (the status within the session; the will, made at
the start, sorts after all of them), so the collector orders them whatever the clock says.

paho's callbacks run in its network thread and only put tuples on a queue; this worker's
thread owns the in-flight map and the outbox writes, so there are no locks shared with paho.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion
from pydantic import ValidationError

from edge.config import EdgeConfig
from edge.store.outbox import Outbox, Pending
from edge.store.snapshots import SnapshotQueue
from edge.sync.pending import OutboxWrites, Unconfirmed
from shared import topics
from shared.codec import BATCH_OVERHEAD, batch_payload, encode_status
from shared.models import Ack, Hello, Status
from shared.mqtt import (
    UNSUPPORTED_PROTOCOL,
    Backoff,
    Endpoints,
    connect_kwargs,
    make_client,
    protocols,
)
from shared.redact import redact

log = logging.getLogger("shian.sync")

StatusFn = Callable[[str, str], Status]
"""(state, reason) -> the status to publish now."""


def _code(rc: Any) -> int:
    return int(getattr(rc, "value", rc))


def _failed(rc: Any) -> bool:
    return bool(getattr(rc, "is_failure", _code(rc) >= 0x80))


class SyncWorker:
    """One thread that keeps the outbox flowing to the broker."""

    def __init__(
        self,
        cfg: EdgeConfig,
        outbox: Outbox,
        status: StatusFn,
        snapshots: SnapshotQueue | None = None,
    ) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.snapshots = snapshots
        self.status = status
        self._session_began: datetime | None = None  # when the current MQTT session began
        self.run = uuid.uuid4().hex  # this process: statuses are ordered by (run, sess, n)
        self._sess = 0
        self._n = 0
        self.writes = OutboxWrites(outbox, snapshots)
        self.unconfirmed = Unconfirmed()  # this session's PUBACKs awaiting confirmation
        self._hello: str | None = None  # the collector session last heard of
        self.counters = {
            "sync_sessions": 0,
            "sync_messages": 0,
            "sync_acked_events": 0,
            "sync_broker_rejected": 0,
            "sync_connect_failures": 0,
            "sync_broker_moves": 0,
            "sync_confirmed_events": 0,
            "sync_resends": 0,
            "sync_bad_commands": 0,
        }
        self.connected = False
        self._client: Any = None  # the session's client, while connected
        self.protocol: MQTTProtocolVersion | None = None
        self.handlers: dict[str, Callable[[str, bytes], None]] = {}
        """Command name -> handler of (the rest of the topic after cmd/, payload):
        ``catalog``, ``notice`` (cmd/notice/{id}), ``reply``."""
        self.alive_at = time.monotonic()
        self._stop = threading.Event()
        self._q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="shian-sync", daemon=True)
        self._backoff = Backoff(cfg.mqtt.backoff_initial_s, cfg.mqtt.backoff_max_s)
        self.brokers = Endpoints(cfg.mqtt, cfg.device)
        self._sent: dict[int, float] = {}

    # -- control ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self.wake()
        self._thread.join(timeout)

    def wake(self) -> None:
        """New events were committed: send them now rather than at the next poll."""
        self._q.put(("wake",))

    def publish_now(self, topic: str, payload: bytes) -> bool:
        """Publish at QoS 0 from any thread, outside the outbox (a live view's frame: one
        lost is replaced by the next); False when there is no session."""
        client = self._client
        if client is None:
            return False
        return bool(client.publish(topic, payload, qos=0).rc == 0)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        candidates = protocols(self.cfg.mqtt)
        outcome = "error"
        while not self._stop.is_set():
            self.alive_at = began = time.monotonic()
            outcome = "error"
            try:
                outcome = self._session(candidates[0], probing=len(candidates) > 1)
            except Exception:  # never let the sync thread die; log and retry
                log.exception("sync session failed")
            if outcome == "unsupported" and len(candidates) > 1:
                log.info("broker does not speak MQTT %s; trying the next version", candidates[0])
                candidates = candidates[1:]
                continue
            if outcome == "stopped":
                return
            if self._stop.is_set():
                break
            if self.brokers.next():  # that node failed or dropped us: the next one
                log.info("moving to broker %s", redact(self.brokers.url))
                self.counters["sync_broker_moves"] += 1
            if time.monotonic() - began >= self.cfg.mqtt.backoff_max_s:
                self._backoff.reset()  # a session that held: the next one may start at once
            delay = self._backoff.next_delay()
            log.info("reconnecting in %.1f s", delay)
            self._sleep(delay)
        if outcome != "unreachable":  # the broker was there a moment ago: say goodbye
            self._farewell(candidates[0])

    def _farewell(self, protocol: MQTTProtocolVersion) -> None:
        """Stopped between sessions: connect briefly to leave the offline status, so a stopped
        box is never shown online (its last retained status may be a heartbeat)."""
        mq = self.cfg.mqtt
        q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        client = make_client(mq, mq.client_id, protocol)
        client.on_connect = lambda _c, _u, _f, rc, _p: q.put(("connack", rc))
        client.connect_timeout = 3.0  # the agent's stop waits for this thread
        self._sess += 1
        try:
            client.connect(*self.brokers.address, mq.keepalive_s, **connect_kwargs(protocol))
        except (OSError, ValueError) as exc:
            log.info("stopped while the broker is away; no offline status left (%s)", exc)
            return
        client.loop_start()
        try:
            ev = q.get(timeout=min(5.0, mq.connect_timeout_s))
            if ev[0] == "connack" and not _failed(ev[1]):
                self._publish_status(client, "offline", "stop", wait=True)
        except queue.Empty:
            log.info("stopped while the broker is away; no offline status left")
        finally:
            client.disconnect()
            client.loop_stop()

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < end:
            self.alive_at = time.monotonic()
            self._stop.wait(min(1.0, end - time.monotonic()))

    def _session(self, protocol: MQTTProtocolVersion, probing: bool = False) -> str:
        """Run one MQTT session; return how it ended. ``probing``: other versions remain to
        try, and a broker that never answers this CONNECT is taken as not speaking it (a
        3.1.1-only broker may misparse an MQTT 5 CONNECT and wait for bytes that never come)."""
        cfg, mq = self.cfg, self.cfg.mqtt
        q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._q = q
        client = make_client(mq, mq.client_id, protocol)
        client.on_connect = lambda _c, _u, _f, rc, _p: q.put(("connack", rc))
        client.on_disconnect = lambda _c, _u, _f, rc, _p: q.put(("gone", rc))
        client.on_publish = lambda _c, _u, mid, rc, _p: q.put(("ack", mid, rc))
        client.on_message = lambda _c, _u, msg: q.put(("cmd", msg.topic, msg.payload, msg.retain))
        client.on_subscribe = lambda _c, _u, _mid, codes, _p: q.put(("suback", codes))
        client.max_inflight_messages_set(cfg.sync.inflight_window + 4)  # + status messages
        client.max_queued_messages_set(0)
        gone = self.status("offline", "will")
        self._session_began = gone.ts
        self._sess += 1
        will = encode_status(self._stamp(gone))
        client.will_set(topics.status(cfg.device), will, qos=1, retain=True)
        try:
            client.connect(*self.brokers.address, mq.keepalive_s, **connect_kwargs(protocol))
        except (OSError, ValueError) as exc:
            self.counters["sync_connect_failures"] += 1
            log.warning("cannot connect to %s: %s", redact(self.brokers.url), redact(str(exc)))
            return "unreachable"
        client.loop_start()
        try:
            return self._connected_session(client, q, protocol, probing)
        finally:
            self.connected, self._client = False, None
            client.disconnect()
            client.loop_stop()

    def _wait_connack(self, q: queue.SimpleQueue[tuple[Any, ...]], probing: bool) -> str:
        timeout = self.cfg.mqtt.connect_timeout_s
        if probing and self.protocol is None:
            timeout = min(timeout, 3.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            self.alive_at = time.monotonic()
            try:
                ev = q.get(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except queue.Empty:
                continue
            if ev[0] == "connack":
                if not _failed(ev[1]):
                    return "ok"
                if _code(ev[1]) in UNSUPPORTED_PROTOCOL:
                    return "unsupported"
                log.warning("broker refused the connection: %s", ev[1])
                return "refused"
            if ev[0] == "gone":
                # A 3.1.1-only broker may just close the socket on an MQTT 5 CONNECT.
                return "unsupported" if probing and self.protocol is None else "error"
        if self._stop.is_set():
            return "interrupted"  # stopped before the session began: the farewell says offline
        return "unsupported" if probing and self.protocol is None else "timeout"

    def _connected_session(
        self,
        client: Any,
        q: queue.SimpleQueue[tuple[Any, ...]],
        protocol: MQTTProtocolVersion,
        probing: bool,
    ) -> str:
        cfg = self.cfg
        outcome = self._wait_connack(q, probing)
        if outcome != "ok":
            if outcome != "interrupted":
                self.counters["sync_connect_failures"] += 1
            return outcome
        self.protocol = protocol
        self.connected, self._client = True, client
        self.counters["sync_sessions"] += 1
        log.info(
            "connected to %s (MQTT %s)", redact(self.brokers.url), "5" if protocol == 5 else "3.1.1"
        )
        # QoS 0: the box's session is clean, so the broker keeps nothing for it while it is
        # away (what must outlive that is retained: notices, the collector's hello), and a
        # copy lost on a dropped connection is sent again by its sender (a confirmation, when
        # the box sends again). QoS 1 would add nothing but, on a NATS cluster, a JetStream
        # consumer made and deleted at each connection (docs/scaling.md).
        client.subscribe([(topics.commands(cfg.device), 0), (topics.COLLECTOR_HELLO, 0)])
        self._publish_status(client, "online")
        inflight: dict[int, list[int]] = {}
        self._sent = {}  # mid -> when published (the PUBACK watchdog)
        cursor = 0  # highest seq published in this session; all below it are in flight or acked
        snaps: dict[int, str] = {}  # mid -> snapshot id
        snap_cursor = ""
        next_beat = time.monotonic() + cfg.sync.heartbeat_s
        next_maint = time.monotonic()
        confirm_wait = cfg.sync.confirm_timeout_s
        waiting = self.unconfirmed = Unconfirmed()
        # A confirmation late by confirm_wait (no more often than that) sends again first only
        # the oldest window (up to ``probe``, from ``pcur``), beside the flow of new events from
        # ``cursor``: a silent collector costs a window, and a slow one that catches up from
        # the broker's queue costs no copies. If it then answers while rows are still late at
        # the next check, the broker lost them: everything unconfirmed goes again.
        probe: int | None = None
        pcur = 0
        probed = heard = False  # the last resend was a window; a confirmation came since
        quiet_until = 0.0
        while True:
            self.alive_at = now = time.monotonic()
            if self._stop.is_set():
                self._publish_status(client, "offline", "stop", wait=True)
                self.writes.flush()
                return "stopped"
            if now >= next_maint:
                self.writes.maintain()
                next_maint = now + 60
            if now >= quiet_until and waiting.waited() >= confirm_wait:
                self.counters["sync_resends"] += 1
                first = self.outbox.pending(
                    limit=cfg.sync.inflight_window * cfg.sync.batch_max_events
                )
                if (probed and heard) or not first:
                    log.warning("events still unconfirmed: sending every one of them again")
                    cursor, snap_cursor, probe, probed = 0, "", None, False
                else:
                    log.warning(
                        "no confirmation from the collector for %.0f s; sending the oldest "
                        "events again",
                        confirm_wait,
                    )
                    probe, pcur, probed = first[-1].seq, 0, True
                heard = False
                quiet_until = now + confirm_wait
                confirm_wait = min(cfg.sync.confirm_timeout_max_s, confirm_wait * 2)
            if now >= next_beat:
                self._publish_status(client, "online")
                next_beat = now + cfg.sync.heartbeat_s
            if probe is not None:
                pcur = self._fill(client, inflight, pcur, probe)
            cursor = self._fill(client, inflight, cursor)
            if (
                self.snapshots is not None
                and len(snaps) < 2
                and len(inflight) < 2
                and probe is None
            ):
                snap_cursor = self._fill_snapshot(client, snaps, snap_cursor)
            timeout = min(cfg.sync.poll_interval_s, max(0.0, next_beat - time.monotonic()))
            events = []
            try:
                events.append(q.get(timeout=timeout))
                while True:
                    events.append(q.get_nowait())
            except queue.Empty:
                pass
            acked: list[int] = []
            end = None
            for ev in events:  # in arrival order: a PUBACK is taken before its confirmation
                if ev[0] == "ack":
                    self._sent.pop(ev[1], None)
                    seqs = inflight.pop(ev[1], None)
                    if seqs is None:
                        snap = snaps.pop(ev[1], None)
                        if snap is not None and not _failed(ev[2]):
                            self.writes.snap_delivered.append(snap)
                            waiting.snap_acked(snap)
                        continue  # a snapshot or a status message
                    if _failed(ev[2]):
                        self.counters["sync_broker_rejected"] += 1
                        log.warning("broker refused a message of %d events: %s", len(seqs), ev[2])
                        end = "refused"  # resend them in a new session, after a backoff
                    else:
                        acked.extend(seqs)
                        waiting.acked(seqs)
                elif ev[0] == "cmd" and ev[1] == topics.COLLECTOR_HELLO:
                    if self._new_collector(ev[2], retained=bool(ev[3])):
                        log.info("a collector joined the broker: sending unconfirmed events again")
                        cursor, snap_cursor, probe, probed = 0, "", None, False
                        confirm_wait = cfg.sync.confirm_timeout_s
                        quiet_until = now + confirm_wait
                        self.counters["sync_resends"] += 1
                elif ev[0] == "cmd":
                    if self._command(ev[1], ev[2]):
                        confirm_wait = cfg.sync.confirm_timeout_s
                        probe, heard = None, True
                elif ev[0] == "suback" and any(_failed(c) for c in ev[1]):
                    # no commands, and no confirmations, would reach this session: a cluster
                    # node that cannot make the subscription now; another session (or node)
                    log.warning("broker refused the subscriptions: %s", [str(c) for c in ev[1]])
                    end = end or "error"
                elif ev[0] == "gone":
                    log.warning("disconnected: %s", ev[1])
                    end = end or "error"
            if acked:
                self.writes.delivered.extend(acked)
                self.counters["sync_acked_events"] += len(acked)
            self.writes.flush()
            self.counters["sync_confirmed_events"] = self.writes.confirmed_events
            if not end and self._sent:
                waited = time.monotonic() - min(self._sent.values())
                if waited > cfg.mqtt.connect_timeout_s:
                    # A broker that lost a PUBACK (a cluster node electing a leader) leaves
                    # the window full for ever: MQTT sends again only in a new session.
                    log.warning("no PUBACK from the broker for %.0f s: a new session", waited)
                    end = "error"
            if end:
                return end

    def _new_collector(self, payload: bytes, retained: bool) -> bool:
        """Whether this hello is from a collector session the box has not seen. A retained
        one came with the box's own new session, which sends everything anyway: the first is
        only remembered. A live one is a collector joining now."""
        try:
            hello = Hello.model_validate_json(payload)
        except ValidationError:
            self.counters["sync_bad_commands"] += 1
            return False
        first_retained = retained and self._hello is None
        new = not first_retained and hello.session != self._hello
        self._hello = hello.session
        return new

    def _command(self, topic: str, payload: bytes) -> bool:
        """Handle a message on this device's command topic; True for a confirmation."""
        name = topics.parse(topic)
        if name is None or name.channel != "cmd":
            return False
        if name.rest == "ack":
            try:
                ack = Ack.model_validate_json(payload)
            except ValidationError as exc:
                self.counters["sync_bad_commands"] += 1
                log.warning("bad ack on %s: %s", topic, exc.errors(include_url=False)[0]["msg"])
                return False
            self.writes.confirms.extend(ack.seqs)
            if ack.snaps and self.snapshots is not None:
                self.writes.snap_confirms.extend(ack.snaps)
            self.unconfirmed.confirmed(ack.seqs, ack.snaps)
            return True
        handler = self.handlers.get(name.rest.split("/")[0])
        if handler is None:
            log.info("command %s not handled by this agent version", name.rest)
            return False
        try:
            handler(name.rest, payload)
        except Exception as exc:  # a bad command never stops the sync loop
            self.counters["sync_bad_commands"] += 1
            log.warning("command %s failed: %s", name.rest, exc)
        return False

    def _fill(
        self, client: Any, inflight: dict[int, list[int]], cursor: int, upto: int | None = None
    ) -> int:
        """Publish batches until the in-flight window is full or the outbox is drained (or,
        probing, ``upto`` is reached)."""
        sync = self.cfg.sync
        room = sync.inflight_window - len(inflight)
        if room <= 0:
            return cursor
        rows = self.outbox.pending(after_seq=cursor, limit=room * sync.batch_max_events)
        if upto is not None:
            rows = [r for r in rows if r.seq <= upto]
        flying = {seq for seqs in inflight.values() for seq in seqs}
        complete = True
        for batch in _batches(
            [r for r in rows if r.seq not in flying], sync.batch_max_events, sync.batch_max_bytes
        ):
            info = client.publish(
                topics.events(self.cfg.device), batch_payload([r.body for r in batch]), qos=1
            )
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # Not connected: the rows stay unconfirmed and go in the next session.
                log.info("publish not accepted (%s); waiting for the session to end", info.rc)
                return cursor
            inflight[info.mid] = [r.seq for r in batch]
            self._sent[info.mid] = time.monotonic()
            cursor = batch[-1].seq
            self.counters["sync_messages"] += 1
            if len(inflight) >= sync.inflight_window:
                complete = False
                break
        return max(cursor, rows[-1].seq) if rows and complete else cursor

    def _fill_snapshot(self, client: Any, snaps: dict[int, str], cursor: str) -> str:
        """Send the next unconfirmed snapshot, after the events (evidence is bulkier and can
        wait for the violation it belongs to)."""
        assert self.snapshots is not None
        flying = set(snaps.values())
        for snap in self.snapshots.pending(after_id=cursor, limit=4):
            cursor = snap.id
            if snap.id in flying:
                continue
            data = self.snapshots.read(snap)
            if data is None:
                continue
            info = client.publish(topics.snapshot(self.cfg.device, snap.id), data, qos=1)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                snaps[info.mid] = snap.id
            return cursor
        return cursor

    def _stamp(self, st: Status) -> Status:
        """The status with its place among this box's statuses (run, session, number)."""
        self._n += 1
        return st.model_copy(
            update={
                "session": self._session_began,
                "run": self.run,
                "sess": self._sess,
                "n": self._n,
            }
        )

    def _publish_status(
        self, client: Any, state: str, reason: str = "", wait: bool = False
    ) -> None:
        payload = encode_status(self._stamp(self.status(state, reason)))
        info = client.publish(topics.status(self.cfg.device), payload, qos=1, retain=True)
        if wait and info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            with contextlib.suppress(RuntimeError):  # the connection went meanwhile
                info.wait_for_publish(timeout=2)


def _batches(rows: list[Pending], max_events: int, max_bytes: int) -> list[list[Pending]]:
    """Split rows into messages of at most ``max_events`` events and ``max_bytes`` bytes."""
    out: list[list[Pending]] = []
    cur: list[Pending] = []
    size = BATCH_OVERHEAD
    for row in rows:
        if cur and (len(cur) >= max_events or size + row.size + 1 > max_bytes):
            out.append(cur)
            cur, size = [], BATCH_OVERHEAD
        cur.append(row)
        size += row.size + 1
    if cur:
        out.append(cur)
    return out
