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

import json
import logging
import time
from pathlib import Path
from typing import Any

from cloud.alerts.engine import AlertEngine
from cloud.alerts.store import AlertTables
from cloud.batch import DeadLetter, Snapshot, WriteResult
from cloud.config import EvidenceSettings
from cloud.db import Conn, open_database
from cloud.deadletters import DeadLetters
from cloud.evidence import Evidence
from cloud.fleet.rollouts import Rollouts
from cloud.identity import screen
from cloud.ranges import add_seqs, holes, select_in
from cloud.registry import RegistryTable
from cloud.tickets import Tickets
from shared.models import Envelope, Status

log = logging.getLogger("shian.store")

__all__ = ["DeadLetter", "Snapshot", "Store", "WriteResult"]


def _older(st: Status, prev: Status | None, ended: list[str], prev_age_s: float) -> bool:
    """Whether ``st`` happened before the status already stored: another collector took a
    later one first (shared subscriptions do not keep a box's messages in order), or the
    broker sent the will of a session the box has already replaced. Never by the box's clock,
    which may have been stepped: within one agent run by (session, the will last, number); a
    run already replaced is older. Between runs, by the outbox sequence (it does not go back):
    lower is older, unless what is stored is older than ``RESET_AFTER_S`` (a box whose
    database was wiped starts again from 1); on a tie (a full disk refused device_started)
    the later arrival wins, except a will, which never replaces another run's status (if the
    box is really gone, silence says so). A status that does not say (an older agent) is
    taken as it comes."""
    if st.run is None or prev is None:
        return False
    if st.run in ended:
        return True
    if prev.run is None:
        return False
    if prev.run == st.run:
        return _place(st) < _place(prev)
    seq, before = st.last_seq or 0, prev.last_seq or 0
    if seq == before:
        return st.reason == "will"
    return seq < before and prev_age_s < RESET_AFTER_S


def _replaced_run(st: Status, prev: Status | None) -> str | None:
    """The run that the applied ``st`` ends for good (its late will is then stale): not on a
    tie of sequences, where the order is only the order of arrival."""
    if prev is None or prev.run is None or st.run in (None, prev.run):
        return None
    return prev.run if (st.last_seq or 0) != (prev.last_seq or 0) else None


def _place(st: Status) -> tuple[int, int, int]:
    return (st.sess or 0, 1 if st.reason == "will" else 0, st.n or 0)


RUNS_KEPT = 8
"""Replaced agent runs remembered per box (a late will of any of them is dropped)."""
RESET_AFTER_S = 600.0
"""A stored status older than this no longer outranks a new run with a lower sequence."""


def _parse(stored: str | None) -> Status | None:
    try:
        return Status.model_validate_json(stored) if stored else None
    except ValueError:
        return None


def _skew(st: Status, now: float) -> float | None:
    """How far ahead of the collector the box's clock is, by a status written just now (a will
    carries its session's start, so it says nothing of the clock)."""
    if st.reason == "will":
        return None
    return round(st.ts.timestamp() - now, 3)


class Store(AlertTables):
    """Thread-safe (the writer thread, the alert ticks, the web server and CLI readers)."""

    def __init__(
        self,
        target: Path | str,
        snapshots_dir: Path | None = None,
        engine: AlertEngine | None = None,
        pool_size: int = 4,
        retention: EvidenceSettings | None = None,
        fleet: Rollouts | None = None,
    ) -> None:
        """``target``: an SQLite file, or a ``postgresql://`` URL (then give ``snapshots_dir``).
        ``engine`` and ``fleet`` take what each batch brings, in its transaction."""
        self.db = open_database(target, pool_size)
        self.fleet = fleet
        base = Path(target).parent if self.db.dialect == "sqlite" else Path(".")
        self.engine = engine
        retention = retention or EvidenceSettings()
        self.registry = RegistryTable(self.db)
        self.evidence = Evidence(self.db, snapshots_dir or base / "snapshots", retention)
        self.dead = DeadLetters(self.db, retention)
        self.tickets = Tickets(self.db)

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
            new_events = self._new(conn, ok.events)
            accepted = ok.events
            refused = self.tickets.claim(conn, new_events, dead)
            if refused:
                accepted = [e for e in ok.events if str(e.id) not in refused]
                new_events = [e for e in new_events if str(e.id) not in refused]
            self._events(conn, accepted, new_events, now, res)
            changed = self._statuses(conn, ok.statuses, now)
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

    def _events(
        self, conn: Conn, events: list[Envelope], new: list[Envelope], now: float, res: WriteResult
    ) -> None:
        if not events:
            return
        by_device: dict[str, list[Envelope]] = {}
        for env in events:
            by_device.setdefault(env.device, []).append(env)
        self._touch_devices(conn, [(d, envs[-1].site) for d, envs in by_device.items()], now)
        conn.executemany(
            "INSERT INTO events (id, device, site, seq, ts, kind, data, received)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            [
                (
                    str(e.id),
                    e.device,
                    e.site,
                    e.seq,
                    e.ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    e.kind,
                    json.dumps(e.data, ensure_ascii=False, separators=(",", ":")),
                    now,
                )
                for e in new
            ],
        )
        self.tickets.insert(conn, new, now)
        fresh: dict[str, int] = {}
        for e in new:
            fresh[e.device] = fresh.get(e.device, 0) + 1
        counts = []
        for device, envs in by_device.items():
            inserted = fresh.get(device, 0)
            res.inserted += inserted
            res.duplicates += len(envs) - inserted
            top = max(e.seq for e in envs)
            counts.append((inserted, len(envs) - inserted, top, top, device))
        conn.executemany(
            "UPDATE devices SET events = events + ?, duplicates = duplicates + ?,"
            " max_seq = CASE WHEN max_seq > ? THEN max_seq ELSE ? END WHERE device = ?",
            counts,
        )
        res.new_gaps = add_seqs(conn, {d: [e.seq for e in envs] for d, envs in by_device.items()})

    def _statuses(self, conn: Conn, statuses: list[Status], now: float) -> list[Status]:
        """Store the statuses; return those the alert engine must see (a change of state, or
        outbox figures). The same message again (another collector's copy) is skipped."""
        if not statuses:
            return []
        before = {
            r[0]: [r[1], r[2], r[3], json.loads(r[4] or "[]"), r[5]]
            for r in select_in(
                conn,
                "SELECT device, state, state_reason, last_status, ended_runs, status_received"
                " FROM devices",
                "device",
                [st.device for st in statuses],
            )
        }
        changed: list[Status] = []
        rows: dict[str, tuple[Any, ...]] = {}
        for st in statuses:
            text = st.model_dump_json(exclude_none=True)
            old = before.get(st.device)
            prev = _parse(old[2]) if old is not None else None
            ended = old[3] if old is not None else []
            age = now - (old[4] or 0.0) if old is not None else 0.0
            if old is not None and (old[2] == text or _older(st, prev, ended, age)):
                continue  # the same message again, or one older than what is stored
            if old is None or (old[0], old[1]) != (st.state, st.reason) or st.outbox is not None:
                changed.append(st)
            replaced = _replaced_run(st, prev)
            if replaced is not None:
                ended = [*ended, replaced][-RUNS_KEPT:]
            before[st.device] = [st.state, st.reason, text, ended, now]
            skew = _skew(st, now)
            rows[st.device] = (
                text,
                st.reason,
                st.state,
                now,
                st.state,
                json.dumps(ended),
                skew,
                now,
            )
        self._touch_devices(conn, [(st.device, st.site) for st in statuses], now)
        conn.executemany(
            "UPDATE devices SET last_status = ?, state_reason = ?,"
            " state_changed = CASE WHEN state = ? THEN state_changed ELSE ? END,"
            " state = ?, ended_runs = ?, clock_skew_s = coalesce(?, clock_skew_s),"
            " status_received = ? WHERE device = ?",
            [(*r, device) for device, r in rows.items()],
        )
        return changed

    @staticmethod
    def _new(conn: Conn, events: list[Envelope]) -> list[Envelope]:
        """The events of a batch not stored before, once each (a redelivery raises no alert
        twice and is not inserted again)."""
        if not events:
            return []
        ids = [str(e.id) for e in events]
        seen = {r[0] for r in select_in(conn, "SELECT id FROM events", "id", ids)}
        fresh: dict[str, Envelope] = {}
        for e in events:
            if str(e.id) not in seen:
                fresh.setdefault(str(e.id), e)
        return list(fresh.values())

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

    def snapshot(self, snap_id: str) -> dict[str, Any] | None:
        return self.evidence.get(snap_id)

    @staticmethod
    def _touch_devices(conn: Conn, device_sites: list[tuple[str, str]], now: float) -> None:
        conn.executemany(
            "INSERT INTO devices (device, site, last_seen) VALUES (?,?,?) "
            "ON CONFLICT(device) DO UPDATE SET site = excluded.site,"
            " last_seen = excluded.last_seen",
            [(device, site, now) for device, site in dict(device_sites).items()],
        )

    # -- reading -----------------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.db.query(sql, params)

    def events(
        self, device: str | None = None, kind: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        where, params = [], []
        if device:
            where.append("device = ?")
            params.append(device)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received DESC, device, seq DESC LIMIT ?"
        rows = self._rows(sql, (*params, limit))
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows

    def count_events(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM events")[0]["n"])

    def devices(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM devices ORDER BY device")
        ranges: dict[str, list[tuple[int, int]]] = {}
        for r in self._rows("SELECT device, lo, hi FROM seq_ranges ORDER BY device, lo"):
            ranges.setdefault(r["device"], []).append((r["lo"], r["hi"]))
        for r in rows:
            gaps = holes(ranges.get(r["device"], []))
            r["gaps"] = [list(g) for g in gaps]
            r["missing"] = sum(hi - lo + 1 for lo, hi in gaps)
            r["last_status"] = json.loads(r["last_status"]) if r["last_status"] else None
        return rows

    def ticket(self, ticket_id: str) -> dict[str, Any] | None:
        return self.tickets.get(ticket_id)

    def deadletters(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.dead.list(limit)

    def close(self) -> None:
        self.db.close()
