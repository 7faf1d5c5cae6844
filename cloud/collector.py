"""The collector: subscribe to every device, validate, store once, acknowledge after commit.

paho delivers messages in its network thread; with manual acknowledgement on, the PUBACK for
a QoS 1 message is sent only after the batch holding it is committed, so a collector killed at
any moment loses nothing: the broker keeps the session (``clean=False``) and sends what was
not acknowledged again. With ``share_group`` set, events, snapshots, commands and statuses all
go through shared subscriptions, so each message reaches one collector of the group (a
heartbeat written once, not once per collector). Shared subscriptions get no retained
messages, so a group's collectors learn a box's state from its next heartbeat (or the store
they share) rather than from the retained status; a lone collector still reads it.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.batch import DeadLetter, Snapshot, WriteResult
from cloud.config import CloudConfig
from cloud.db import is_transient
from cloud.intake import NatsIntake
from cloud.publisher import AlertPublisher
from cloud.ranges import merge_ranges
from cloud.store import Store
from shared import SCHEMA_VERSION, topics
from shared.alerts import ALL_SUPERVISOR_COMMANDS
from shared.codec import CodecError, check_snapshot, decode_batch, decode_status, internal
from shared.models import Ack, Envelope, Hello, Status
from shared.mqtt import (
    UNSUPPORTED_PROTOCOL,
    Backoff,
    Endpoints,
    connect_kwargs,
    make_client,
    protocols,
    tls_context,
)
from shared.redact import redact

log = logging.getLogger("shian.collector")


@dataclass
class Incoming:
    client: Any
    mid: int
    qos: int
    topic: str
    payload: bytes


def classify(
    messages: list[Incoming],
) -> tuple[list[Envelope], list[Status], list[DeadLetter], list[Snapshot]]:
    """Decode a batch of MQTT messages, each on its own: whatever fails (a reason we foresaw
    or any other exception) becomes that message's dead letter, and the rest go on."""
    events: list[Envelope] = []
    statuses: list[Status] = []
    dead: list[DeadLetter] = []
    snaps: list[Snapshot] = []
    for m in messages:
        if _is_command(m.topic):
            continue  # a supervisor's command: the alert engine takes it
        try:
            _classify_one(m, events, statuses, dead, snaps)
        except CodecError as exc:
            dead.append(DeadLetter(m.topic, m.payload, exc.reason))
        except Exception as exc:  # a bug of ours must not stop the collector or the batch
            log.exception("decoding a message on %s failed", m.topic[:200])
            dead.append(DeadLetter(m.topic, m.payload, internal(exc)))
    return events, statuses, dead, snaps


def _classify_one(
    m: Incoming,
    events: list[Envelope],
    statuses: list[Status],
    dead: list[DeadLetter],
    snaps: list[Snapshot],
) -> None:
    where = topics.parse(m.topic)
    if (
        where is None
        or where.channel not in ("events", "status", "snap")
        or (where.channel != "snap" and where.rest)
    ):
        raise CodecError("topic", f"not a device events, status or snap topic: {m.topic[:200]}")
    if where.channel == "snap":
        check_snapshot(where.rest, m.payload)
        snaps.append(Snapshot(where.device, where.rest, m.payload))
    elif where.channel == "status":
        if m.payload:  # an empty one clears a retained status
            statuses.append(decode_status(m.payload, where.device))
    else:
        batch = decode_batch(m.payload, where.device)
        events.extend(batch.events)
        dead.extend(DeadLetter(m.topic, r.raw, r.reason) for r in batch.rejected)


def _is_command(topic: str) -> bool:
    parts = topic.split("/")
    return len(parts) == 5 and topic.startswith("shian/v1/sup/") and parts[4] == "cmd"


def _failed(rc: Any) -> bool:
    return bool(getattr(rc, "is_failure", False))


class Collector:
    """Runs a network session thread and a writer thread."""

    def __init__(self, cfg: CloudConfig, store: Store) -> None:
        self.cfg = cfg
        self.settings = cfg.broker()
        self.brokers = Endpoints(self.settings, self.settings.client_id)
        self.store = store
        self.counters = {
            "messages": 0,
            "events": 0,
            "duplicates": 0,
            "deadletters": 0,
            "sessions": 0,
        }
        self.connected = threading.Event()
        self._inbox: queue.SimpleQueue[Incoming | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._net = threading.Thread(target=self._run_network, name="collector-net", daemon=True)
        self._writer = threading.Thread(target=self._run_writer, name="collector-db", daemon=True)
        self._heard(None)
        self.publisher = AlertPublisher(
            store, self.settings.client_id, cfg.collector.publisher_lease_s
        )
        self._member: tuple[Any, list[str]] | None = None
        self._client: Any = None  # the MQTT session's client, while connected
        c = cfg.collector
        self.intake = (
            NatsIntake(
                c.intake_urls,
                c.share_group or "collectors",
                self._take,
                self.settings.username,
                self.settings.secret(),
                backlog=self._inbox.qsize,
                max_backlog=20 * c.batch_max_messages,
                on_state=self._intake_state,
                tls=tls_context(self.settings) if c.intake_urls[0].startswith("tls://") else None,
            )
            if c.intake_urls
            else None
        )
        self.failure: str | None = None
        self.failed = threading.Event()
        self._started = self._stopping = False
        self._next_prune = 0.0

    def _intake_state(self, up: bool) -> None:
        """With an intake the boxes are heard through it: its loss is silence (the silence
        checks wait), not every box going quiet at once."""
        self._heard(time.time() if up and self.connected.is_set() else None)

    def _take(self, topic: str, payload: bytes) -> None:
        """A message from the intake's queue group (nothing to acknowledge to a broker)."""
        self._inbox.put(Incoming(None, 0, 0, topic, payload))

    def _leave_group(self) -> None:
        """On a clean stop, unsubscribe from the shared subscriptions first: the broker would
        otherwise keep queueing this collector's share for its persistent session while it is
        away (round robin does not skip an absent member), and those messages would wait for
        it or for the boxes to send them again."""
        if self.intake is not None:
            self.intake.stop()
        if self._member is None or not self.connected.is_set():
            return
        client, subscriptions = self._member
        left = threading.Event()
        client.on_unsubscribe = lambda *_: left.set()
        client.unsubscribe(subscriptions)
        if not left.wait(5):
            log.warning("no UNSUBACK from the broker; its queue may keep this collector's share")

    def _heard(self, since: float | None) -> None:
        """Tell the alert engine whether this collector can hear the boxes (silence checks)."""
        if self.store.engine is not None:
            self.store.engine.connected_since = since

    def start(self) -> None:
        if self.intake is not None:  # a member of the group before the hello asks for resends
            self.intake.start()
        self._writer.start()
        self.publisher.start()
        self._net.start()
        self._started = True

    def stop(self) -> None:
        """Leave the share group, write and acknowledge what has arrived, then leave the
        broker."""
        self._stopping = True
        self._leave_group()
        self._inbox.put(None)
        self._writer.join(10)
        self.publisher.stop()
        self._stop.set()
        self._net.join(10)

    # -- network ------------------------------------------------------------------------------
    def _run_network(self) -> None:
        try:
            self._network_loop()
        except BaseException as exc:
            self._died("network", exc)

    def _network_loop(self) -> None:
        backoff = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s)
        candidates = protocols(self.settings)
        while not self._stop.is_set():
            try:
                outcome = self._session(candidates[0])
            except Exception:
                log.exception("collector session failed")
                outcome = "error"
            if outcome == "unsupported" and len(candidates) > 1:
                candidates = candidates[1:]
                continue
            if outcome == "ok":
                backoff.reset()
            if self.brokers.next():  # that node failed or dropped us: the next one
                log.info("collector moving to broker %s", redact(self.brokers.url))
            if not self._stop.is_set():
                self._stop.wait(backoff.next_delay())

    def _session(self, protocol: MQTTProtocolVersion) -> str:
        s, c = self.settings, self.cfg.collector
        events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        client = make_client(s, s.client_id, protocol, clean=False)
        client.manual_ack_set(True)
        client.on_connect = lambda _c, _u, flags, rc, _p: events.put(("connack", rc, flags))
        client.on_disconnect = lambda _c, _u, _f, rc, _p: events.put(("gone", rc))
        client.on_publish = lambda _c, _u, mid, rc, _p: self.publisher.puback(mid, _failed(rc))
        client.on_message = lambda cl, _u, msg: self._inbox.put(
            Incoming(cl, msg.mid, msg.qos, msg.topic, bytes(msg.payload))
        )
        try:
            client.connect(
                *self.brokers.address,
                s.keepalive_s,
                **connect_kwargs(protocol, clean=False, session_expiry_s=c.session_expiry_s),
            )
        except (OSError, ValueError) as exc:
            log.warning("cannot connect to %s: %s", redact(self.brokers.url), redact(str(exc)))
            return "error"
        client.loop_start()
        try:
            ev = events.get(timeout=s.connect_timeout_s)
        except queue.Empty:
            client.disconnect()
            client.loop_stop()
            return "timeout"
        if ev[0] != "connack" or ev[1].is_failure:
            client.disconnect()
            client.loop_stop()
            code = getattr(ev[1], "value", -1)
            return "unsupported" if code in UNSUPPORTED_PROTOCOL or ev[0] == "gone" else "error"
        group = c.share_group or None
        subscriptions = [
            topics.shared(group, t)
            for t in (topics.ALL_EVENTS, topics.ALL_SNAPSHOTS, ALL_SUPERVISOR_COMMANDS)
        ] + [topics.shared(group, topics.ALL_STATUS)]
        if self.intake is None:  # else the boxes' messages come by the intake's queue group
            client.on_subscribe = lambda *_: events.put(("suback",))
            client.subscribe([(t, 1) for t in subscriptions])
            if not self._subscribed(events, s.connect_timeout_s):
                client.disconnect()
                client.loop_stop()
                return "error"
            if group:
                self._member = (client, subscriptions)
        log.info(
            "collector connected to %s (MQTT %s, session present: %s)",
            redact(self.brokers.url),
            "5" if protocol == MQTTProtocolVersion.MQTTv5 else "3.1.1",
            ev[2].session_present,
        )
        # the broker lost what it held for us (or never had it); with an intake, this process
        # starting may have lost what a queue group had handed to it before
        fresh = self.intake is not None and self.counters["sessions"] == 0
        self.counters["sessions"] += 1
        if fresh or not ev[2].session_present:
            hello = Hello(v=SCHEMA_VERSION, session=uuid.uuid4().hex)  # after the subscriptions
            client.publish(topics.COLLECTOR_HELLO, hello.model_dump_json(), qos=1, retain=True)
        self.connected.set()
        self._heard(time.time() if self.intake is None or self.intake.connected.is_set() else None)
        self.publisher.attach(client)
        self._client = client
        try:  # this thread never touches the database: a locked store must not end the session
            next_clock, expiry = 0.0, None
            if protocol == MQTTProtocolVersion.MQTTv5:  # a stopped collector's time expires
                expiry = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                expiry.MessageExpiryInterval = int(3 * self.cfg.collector.clock_every_s)
            while not self._stop.is_set():
                if time.monotonic() >= next_clock:  # boxes' doctor compares its clock with it
                    clock = json.dumps({"v": 1, "ts": round(time.time(), 3)})
                    client.publish(
                        topics.COLLECTOR_CLOCK, clock, qos=0, retain=True, properties=expiry
                    )
                    next_clock = time.monotonic() + self.cfg.collector.clock_every_s
                try:
                    ev = events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if ev[0] == "gone":
                    log.warning("collector disconnected: %s", ev[1])
                    return "ok"
            return "ok"
        finally:
            self._client = None
            self.publisher.detach()
            self.connected.clear()
            self._heard(None)
            client.disconnect()
            client.loop_stop()

    @staticmethod
    def _subscribed(events: queue.SimpleQueue[tuple[Any, ...]], timeout: float) -> bool:
        """Wait for the SUBACK: only then is the collector connected (it hears the boxes), and
        only then may its hello send them resending."""
        try:
            ev = events.get(timeout=timeout)
        except queue.Empty:
            log.warning("no SUBACK from the broker in %.0f s", timeout)
            return False
        if ev[0] != "suback":
            log.warning("collector disconnected while subscribing: %s", ev[1:])
            return False
        return True

    def wake_publisher(self) -> None:
        self.publisher.wake()

    # -- writing ------------------------------------------------------------------------------
    def _run_writer(self) -> None:
        try:
            self._writer_loop()
        except BaseException as exc:  # the process must not stay up without its writer
            self._died("writer", exc)

    def _died(self, thread: str, exc: BaseException) -> None:
        log.critical("the collector's %s thread died", thread, exc_info=exc)
        self.failure = f"{thread} thread died: {type(exc).__name__}: {exc}"
        self.failed.set()

    def health(self) -> str | None:
        """None while the collector works; else what is wrong (the health endpoint says it,
        and ``shian-cloud run`` exits non-zero so that systemd restarts it)."""
        if self.failure is None and self._started and not self._stop.is_set():
            for t in (self._net, self._writer):
                if not t.is_alive() and not self._stopping:
                    self.failure = f"{t.name} thread is not running"
            if not self.publisher.alive and not self._stopping:
                self.failure = "collector-pub thread is not running"
            if self.intake is not None and not self.intake.alive and not self._stopping:
                self.failure = "collector-intake thread is not running"
        return self.failure

    def _writer_loop(self) -> None:
        c = self.cfg.collector
        next_tick = 0.0
        while True:
            if time.monotonic() >= next_tick:
                self._tick()
                next_tick = time.monotonic() + 1.0
            try:
                first = self._inbox.get(timeout=max(0.01, next_tick - time.monotonic()))
            except queue.Empty:
                continue
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + c.batch_max_wait_s
            while len(batch) < c.batch_max_messages:
                try:
                    item = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    self._write(batch)
                    return
                batch.append(item)
            self._write(batch)

    def _tick(self) -> None:
        """Escalations, deadlines, silent devices: once a second; the evidence and dead-letter
        limits every ``prune_every_s``."""
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self.cfg.evidence.prune_every_s
            try:
                self.store.evidence.prune()
                self.store.dead.prune()
                self.store.partitions.ensure(time.time())
                self.store.partitions.prune(time.time())
            except Exception:
                log.exception("pruning evidence, dead letters and old months failed")
        engine, fleet = self.store.engine, self.store.fleet
        if engine is None and fleet is None:
            return
        try:
            if engine is not None:
                self.store.in_transaction(lambda conn: engine.tick(conn, time.time()))
        except Exception:
            log.exception("alert tick failed")
        try:  # apart: a rollout that fails never holds up the alerts, nor they it
            if fleet is not None:
                self.store.in_transaction(lambda conn: fleet.tick(conn, time.time()))
        except Exception:
            log.exception("rollout tick failed")
        self.wake_publisher()

    def _write(self, batch: list[Incoming]) -> WriteResult | None:
        res = self._store(batch)
        if res is None:
            return None  # stopping: not acknowledged, so the broker keeps them
        for m in batch:
            if m.qos > 0 and m.client is not None:
                m.client.ack(m.mid, m.qos)
        client = batch[-1].client or self._client
        if client is not None:  # else the boxes send again, and the copies are dropped
            self._confirm(client, res.accepted, res.snapshots)
        self.wake_publisher()
        self.counters["messages"] += len(batch)
        self.counters["events"] += res.inserted
        self.counters["duplicates"] += res.duplicates
        self.counters["deadletters"] += res.deadletters
        return res

    def _store(self, batch: list[Incoming]) -> WriteResult | None:
        """Store a batch. While the database is away (or locked) the batch waits, not
        acknowledged, so not lost; when the store refuses the batch for what is in it, each
        message is stored on its own and one the store still refuses becomes a dead letter,
        so one bad message never holds up the others (nor comes back for ever)."""
        while True:
            try:
                return self._store_once(batch)
            except Exception as exc:
                if is_transient(exc) or not self.store.reachable():
                    log.warning("store unavailable (%s); retrying", exc)
                    if self._stop.wait(1.0):
                        return None
                    continue
                log.exception("the store refused a batch of %d message(s)", len(batch))
                if len(batch) > 1:
                    return self._one_by_one(batch)
                return self._refused(batch[0], exc)

    def _refused(self, m: Incoming, exc: Exception) -> WriteResult | None:
        """The message's dead letter. If the store refuses even that, a few times, the store
        itself is broken: the writer stops (the process exits and systemd restarts it) rather
        than loop for ever while saying it is well."""
        dead = [DeadLetter(m.topic, m.payload, f"store: {internal(exc)}")]
        failures = 0
        while True:
            try:
                return self.store.write([], [], dead)
            except Exception as again:
                failures += 0 if is_transient(again) else 1
                if failures >= 3:
                    raise
                log.exception("cannot store the dead letter either; retrying")
                if self._stop.wait(1.0):
                    return None

    def _one_by_one(self, batch: list[Incoming]) -> WriteResult | None:
        total = WriteResult()
        for m in batch:
            res = self._store([m])
            if res is None:
                return None
            total.inserted += res.inserted
            total.duplicates += res.duplicates
            total.deadletters += res.deadletters
            total.accepted += res.accepted
            total.snapshots += res.snapshots
        return total

    def _store_once(self, batch: list[Incoming]) -> WriteResult:
        events, statuses, dead, snaps = classify(batch)
        commands = [(m.topic.split("/")[3], m.payload) for m in batch if _is_command(m.topic)]
        res = self.store.write(events, statuses, dead, snaps, commands=commands)
        for d in dead:
            log.warning("dead letter on %s: %s", d.topic[:200], d.reason)
        return res

    def _confirm(self, client: Any, events: list[Envelope], snaps: list[Snapshot]) -> None:
        """Tell each device which of its events and snapshots are now stored (``cmd/ack``), so
        it can stop sending them. If this is lost the device sends them again; duplicates are
        dropped."""
        by_device: dict[str, list[int]] = {}
        snap_ids: dict[str, list[str]] = {}
        for e in events:
            by_device.setdefault(e.device, []).append(e.seq)
        for s in snaps:
            snap_ids.setdefault(s.device, []).append(s.id)
            by_device.setdefault(s.device, [])
        for device, seqs in by_device.items():
            ack = Ack(v=SCHEMA_VERSION, seqs=merge_ranges([], seqs), snaps=snap_ids.get(device, []))
            client.publish(topics.command(device, "ack"), ack.model_dump_json(), qos=1)
