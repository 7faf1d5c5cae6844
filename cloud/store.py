"""The collector's store: events stored once each, devices, sequence ranges, dead letters.

SQLite by default; PostgreSQL when the target is a ``postgresql://`` URL (``cloud.db``), with
the same SQL and the same semantics, and several collectors may share one such database.

Writes come in batches (one transaction for many MQTT messages) and the collector acknowledges
the messages to the broker only after the commit, so a killed collector loses nothing: the
broker sends the unacknowledged messages again and the insert on the event id (``ON CONFLICT DO
NOTHING``) absorbs them. Each device's received sequence numbers are kept as merged ranges
(``cloud.ranges``); the holes between them are the gaps. With several collectors, one device's
messages may reach two of them at once; a per-device lock (``Conn.lock``) makes their
transactions take turns for that device.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from cloud import purchases, ranges
from cloud.alerts.engine import AlertEngine
from cloud.alerts.repo import Alerts, Webhooks
from cloud.batch import DeadLetter, Snapshot, WriteResult
from cloud.config import EvidenceSettings
from cloud.db import open_database
from cloud.db.partitions import Partitions
from cloud.deadletters import DeadLetters
from cloud.devices import Devices
from cloud.events import Events
from cloud.evidence import Evidence
from cloud.fleet.rollouts import Rollouts
from cloud.identity import screen
from cloud.outbox import Outgoing
from cloud.registry import RegistryTable
from cloud.sites import Sites
from cloud.tickets import Tickets
from shared.models import Envelope, Status

log = logging.getLogger("shian.store")

__all__ = ["DeadLetter", "Snapshot", "Store", "WriteResult"]


class Store:
    """One database and its repositories, one per subject (``store.events``, ``.devices``,
    ``.tickets``, ``.evidence``, ``.alerts``, ``.sites``, ...); ``write`` stores a batch
    across them in one transaction. Thread-safe (the writer thread, the alert ticks, the web
    server and CLI readers)."""

    def __init__(
        self,
        target: Path | str,
        snapshots_dir: Path | None = None,
        engine: AlertEngine | None = None,
        pool_size: int = 4,
        retention: EvidenceSettings | None = None,
        fleet: Rollouts | None = None,
        keep_months: int = 0,
        dedupe_days: float = 62,
    ) -> None:
        """``target``: an SQLite file, or a ``postgresql://`` URL (then give ``snapshots_dir``).
        ``engine`` and ``fleet`` take what each batch brings, in its transaction;
        ``keep_months`` and ``dedupe_days`` are PostgreSQL's (``StoreSettings``)."""
        self.db = open_database(target, pool_size)
        base = Path(target).parent if self.db.dialect == "sqlite" else Path(".")
        self.engine, self.fleet = engine, fleet
        retention = retention or EvidenceSettings()
        self.registry = RegistryTable(self.db)
        self.events = Events(self.db, dedupe_days)
        # months are made by the migration and then by the collector's pruning, not by every
        # command that opens the store
        self.partitions = Partitions(self.db, keep_months)
        self.devices = Devices(self.db)
        self.evidence = Evidence(self.db, snapshots_dir or base / "snapshots", retention)
        self.dead = DeadLetters(self.db, retention)
        self.tickets = Tickets(self.db)
        self.alerts = Alerts(self.db, engine)
        self.sites = Sites(self.db)
        self.webhooks = Webhooks(self.db)
        self.outgoing = Outgoing(self.db)

    def write(
        self,
        events: list[Envelope],
        statuses: list[Status],
        deadletters: list[DeadLetter],
        snapshots: list[Snapshot] | None = None,
        received: float | None = None,
        commands: list[tuple[str, bytes]] | None = None,
    ) -> WriteResult:
        """Store one batch in one transaction (snapshot files are written, fsynced, before).

        What a box says of itself is checked against the registry first (``cloud.identity``);
        what fails becomes a dead letter and the rest is stored. Set-based: a handful of
        statements per batch whatever the number of devices in it, since on PostgreSQL each
        statement is a round trip (``executemany`` is pipelined)."""
        now = received if received is not None else time.time()
        snapshots = snapshots or []
        senders = {e.device for e in events} | {st.device for st in statuses}
        senders |= {s.device for s in snapshots}
        ok = screen(self.registry.devices(senders), events, statuses, snapshots)
        for d in ok.dead:
            log.warning("refused on %s: %s", d.topic[:200], d.reason)
        dead = [*deadletters, *ok.dead]
        prepared = self.evidence.prepare(ok.snapshots, dead)
        devices = {e.device for e in ok.events} | {st.device for st in ok.statuses}
        res = WriteResult()
        with self.db.tx(locks=[f"device:{d}" for d in devices]) as conn:
            held = ranges.read(conn, {e.device for e in ok.events})  # read once, used twice
            new_events = self.events.new(conn, ok.events, now, held)
            accepted = ok.events
            refused = self.tickets.claim(conn, new_events, dead)
            if refused:
                accepted = [e for e in ok.events if e.id not in refused]
                new_events = [e for e in new_events if e.id not in refused]
            if accepted:
                self.events.add(conn, accepted, new_events, now, res, held)
                self.tickets.insert(conn, new_events, now)
                purchases.insert(conn, new_events, now)
            changed = self.devices.statuses(conn, ok.statuses, now)
            res.snapshots = self.evidence.record(conn, prepared, now, dead)
            self.dead.add(conn, dead, now)
            if self.engine is not None:
                self.engine.on_batch(conn, new_events, changed, now)
                for supervisor, payload in commands or []:
                    self.engine.command(conn, now, supervisor, payload)
            if self.fleet is not None:
                self.fleet.record(conn, new_events, now)
        res.accepted, res.deadletters = accepted, len(dead)
        for device, gaps in res.new_gaps.items():
            log.warning("device %s: sequence gap(s) %s", device, gaps)
        return res

    def reachable(self) -> bool:
        """Whether the database answers at all (a refused batch is then about its content)."""
        try:
            self.db.query("SELECT 1 AS one")
        except Exception:
            return False
        return True

    def in_transaction(self, fn: Any) -> Any:
        """Run ``fn(conn)`` in one write transaction (the alert engine's ticks and actions)."""
        with self.db.tx() as conn:
            return fn(conn)

    def close(self) -> None:
        self.db.close()
