"""Events stored once each: what a batch brings that is new, the insert, the per-device counts
and the sequence ranges (``cloud.ranges``), and what the CLI reads."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from cloud import ranges
from cloud.batch import WriteResult
from cloud.db import Conn, Db
from cloud.ranges import Ranges, add_seqs, select_in
from shared.models import Envelope


def _data(data: dict[str, Any]) -> str:
    """An event's data as stored: compact JSON, UTF-8 as it is, written by pydantic's core
    (a tenth of the stdlib encoder's time per event; a float may be spelt 1e16, not 1e+16)."""
    return to_json(data).decode()


def _iso(ts: datetime) -> str:
    """A time as stored: UTC to the millisecond, ``2026-11-26T04:02:05.123Z`` (formatted by
    hand: ``isoformat`` takes twice as long, and this runs for every event)."""
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        ts.year, ts.month, ts.day, ts.hour, ts.minute, ts.second, ts.microsecond // 1000
    )  # fmt: skip


_COLUMNS = ("id", "device", "site", "seq", "ts", "kind", "data", "received")


class Events:
    def __init__(self, db: Db, dedupe_days: float = 62) -> None:
        self.db = db
        self.dedupe_s = dedupe_days * 86400

    def new(
        self, conn: Conn, events: list[Envelope], now: float, held: dict[str, Ranges]
    ) -> list[Envelope]:
        """The events of a batch not stored before, once each (a redelivery raises no alert
        twice and is not inserted again).

        On PostgreSQL ``events`` is partitioned by month (``cloud.db.partitions``), so no
        unique index spans it: a redelivery is looked for among the events received in the
        last ``dedupe_days`` (a box gives up an unconfirmed event after its outbox's
        ``max_age_s``, 30 days by default), which reads only those months, and only for
        events whose seq their device's ranges hold: an event is sent again with its seq, so
        one with a seq never received is new (an id sent again under another seq, which no
        box does, would be stored twice). The devices' locks, taken before, keep two
        collectors from storing one event together. SQLite's one table keeps its primary key
        and looks everywhere. ``held``: the devices' ranges (``ranges.read``)."""
        if not events:
            return []
        ids = [e.id for e in events]
        sql, since, maybe = "SELECT id FROM events", [], ids
        if conn.dialect == "postgresql":
            sql, since = sql + " WHERE received >= ? AND", [now - self.dedupe_s]
            # A redelivery has a seq received before (its ranges hold every seq stored):
            # only those are looked for, none at all while boxes simply stream.
            maybe = [e.id for e in events if ranges.covers(held[e.device], e.seq)]
        seen = {r[0] for r in select_in(conn, sql, "id", maybe, since)} if maybe else set()
        fresh: dict[str, Envelope] = {}
        for i, e in zip(ids, events, strict=True):
            if i not in seen:
                fresh.setdefault(i, e)
        return list(fresh.values())

    def add(
        self,
        conn: Conn,
        events: list[Envelope],
        new: list[Envelope],
        now: float,
        res: WriteResult,
        held: dict[str, Ranges],
    ) -> None:
        """Insert ``new`` (the events of ``events`` not stored before) and count the rest as
        duplicates; each device's row is made or touched here (its site, when last heard)."""
        if not events:
            return
        conn.append(  # new once each, under the devices' locks (``new``)
            "events",
            _COLUMNS,
            [(e.id, e.device, e.site, e.seq, _iso(e.ts), e.kind, _data(e.data), now) for e in new],
        )
        seqs: dict[str, list[int]] = {}
        site: dict[str, str] = {}
        for e in events:
            seqs.setdefault(e.device, []).append(e.seq)
            site[e.device] = e.site  # its last
        fresh = Counter(e.device for e in new)
        counts = []
        for device, got in seqs.items():
            inserted = fresh[device]
            res.inserted += inserted
            res.duplicates += len(got) - inserted
            counts.append((device, site[device], now, inserted, len(got) - inserted, max(got)))
        conn.executemany(  # each device's row, when it was last heard and its counts: one upsert
            "INSERT INTO devices (device, site, last_seen, events, duplicates, max_seq)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(device) DO UPDATE SET site = excluded.site,"
            " last_seen = excluded.last_seen, events = devices.events + excluded.events,"
            " duplicates = devices.duplicates + excluded.duplicates, max_seq = CASE WHEN"
            " devices.max_seq > excluded.max_seq THEN devices.max_seq ELSE excluded.max_seq END",
            counts,
        )
        res.new_gaps = add_seqs(conn, seqs, held)

    def list(
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
        rows = self.db.query(sql, (*params, limit))
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows

    def count_events(self) -> int:
        return int(self.db.query("SELECT count(*) AS n FROM events")[0]["n"])

    def count(self) -> int:
        return int(self.db.query("SELECT count(*) AS n FROM events")[0]["n"])
