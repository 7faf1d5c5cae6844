"""Collector ingest rate against the raw batched insert rate of the same database.

collector: what the collector's writer does for each transaction, without the network: decode
    MQTT messages (each a box's batch of 10 events) and ``Store.write`` them (idempotent
    inserts, sequence ranges, device counters, the alert engine) 50 messages per transaction.
raw: the same rows put into the same table (the collector's schema, migrated: on PostgreSQL,
    events by month) with one ``executemany`` per transaction of the same size, with the same
    durability (SQLite WAL + synchronous=FULL; PostgreSQL synchronous_commit=on).
raw COPY (PostgreSQL): the same rows by ``COPY``, as the collector now puts its events in,
    for what the database does at its quickest (the ratio stays against ``executemany``).
Both on a fresh database each run; medians of the runs, the ratio collector / raw.

Used by bench/city.py; alone: ``python bench/ingest.py --json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud.alerts.engine import AlertEngine
from cloud.collector import Incoming, classify
from cloud.config import AlertSettings
from cloud.db import open_database
from cloud.registry import Identity
from cloud.store import Store
from shared.codec import batch_payload, envelope_json
from shared.ids import uuid7
from shared.sqlite import Transaction, open_db

PER_MESSAGE = 10
PER_TX = 50


def workload(events: int, devices: int = 200) -> list[list[tuple[Any, ...]]]:
    """Rows of ``events`` test events from ``devices`` boxes, as messages of 10 events."""
    msgs: list[list[tuple[Any, ...]]] = []
    seqs = dict.fromkeys(range(devices), 0)
    for i in range(events // PER_MESSAGE):
        d = i % devices
        rows = []
        for _ in range(PER_MESSAGE):
            seqs[d] += 1
            rows.append(
                (
                    str(uuid7()),
                    f"box-{d:04d}",
                    "site-1",
                    seqs[d],
                    "2026-11-26T04:00:00.000Z",
                    "test",
                    '{"n":1}',
                )
            )
        msgs.append(rows)
    return msgs


def as_incoming(msgs: list[list[tuple[Any, ...]]]) -> list[Incoming]:
    out = []
    for n, rows in enumerate(msgs):
        bodies = [
            envelope_json(
                event_id=r[0], device=r[1], site=r[2], seq=r[3], ts=r[4], kind=r[5], data_json=r[6]
            )
            for r in rows
        ]
        out.append(Incoming(None, n, 1, f"shian/v1/dev/{rows[0][1]}/events", batch_payload(bodies)))
    return out


def collector_rate(target: str | Path, incoming: list[Incoming], snaps: Path) -> float:
    store = Store(target, snaps, engine=AlertEngine(AlertSettings()))
    boxes = sorted({m.topic.split("/")[3] for m in incoming})
    store.registry.put_many(  # registered, as any box is: the collector believes the registry
        [
            Identity(name=b, kind="device", role="kitchen", site="site-1", district="d1")
            for b in boxes
        ]
    )
    t0 = time.perf_counter()
    for i in range(0, len(incoming), PER_TX):
        events, statuses, dead, _ = classify(incoming[i : i + PER_TX])
        store.write(events, statuses, dead)
    elapsed = time.perf_counter() - t0
    n = store.events.count()
    store.close()
    assert n == len(incoming) * PER_MESSAGE, "every event stored"
    return n / elapsed


def same_table(target: str | Path) -> None:
    """The collector's schema, migrated (on PostgreSQL, events by month), for the raw
    insert to go into the same table."""
    open_database(target).close()


INSERT = "INSERT INTO events (id, device, site, seq, ts, kind, data, received) VALUES "


def raw_rate_sqlite(path: Path, msgs: list[list[tuple[Any, ...]]]) -> float:
    same_table(path)
    db = open_db(path)
    rows = [(*r, time.time()) for m in msgs for r in m]
    per = PER_TX * PER_MESSAGE
    t0 = time.perf_counter()
    for i in range(0, len(rows), per):
        with Transaction(db) as conn:
            conn.executemany(INSERT + "(?,?,?,?,?,?,?,?)", rows[i : i + per])
    elapsed = time.perf_counter() - t0
    db.conn.close()
    return len(rows) / elapsed


def raw_rate_postgres(url: str, msgs: list[list[tuple[Any, ...]]], copy: bool = False) -> float:
    """The raw batched insert (``executemany``); with ``copy``, the same rows by ``COPY``."""
    import psycopg

    same_table(url)
    rows = [(*r, time.time()) for m in msgs for r in m]
    per = PER_TX * PER_MESSAGE
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.cursor()
        t0 = time.perf_counter()
        for i in range(0, len(rows), per):
            with conn.transaction():
                if not copy:
                    cur.executemany(INSERT + "(%s,%s,%s,%s,%s,%s,%s,%s)", rows[i : i + per])
                    continue
                with cur.copy(COPY) as writer:
                    for row in rows[i : i + per]:
                        writer.write_row(row)
        elapsed = time.perf_counter() - t0
    return len(rows) / elapsed


COPY = "COPY events (id, device, site, seq, ts, kind, data, received) FROM STDIN"


def measure(new_pg_db: Callable[[], str] | None, events: int, runs: int) -> dict[str, Any]:
    """Both backends (PostgreSQL when ``new_pg_db`` gives fresh database URLs)."""
    out: dict[str, Any] = {}
    backends = ["sqlite"] + (["postgresql"] if new_pg_db else [])
    for backend in backends:
        coll, raw, copy = [], [], []
        for _ in range(runs):  # alternate, so drift of a shared machine hits both alike
            msgs = workload(events)
            incoming = as_incoming(msgs)
            with tempfile.TemporaryDirectory() as tmp:
                t = Path(tmp)
                if backend == "sqlite":
                    raw.append(raw_rate_sqlite(t / "raw.db", msgs))
                    coll.append(collector_rate(t / "c.db", incoming, t / "snaps"))
                else:
                    assert new_pg_db is not None
                    raw.append(raw_rate_postgres(new_pg_db(), msgs))
                    coll.append(collector_rate(new_pg_db(), incoming, t / "snaps"))
                    copy.append(raw_rate_postgres(new_pg_db(), msgs, copy=True))
        c, r = statistics.median(coll), statistics.median(raw)
        out[backend] = {
            "collector_events_per_s": round(c),
            "raw_insert_events_per_s": round(r),
            "ratio": round(c / r, 3),
            "runs": {"collector": [round(x) for x in coll], "raw": [round(x) for x in raw]},
        }
        if copy:
            out[backend]["raw_copy_events_per_s"] = round(statistics.median(copy))
            out[backend]["runs"]["raw_copy"] = [round(x) for x in copy]
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000, help="Events per run.")
    p.add_argument("--runs", type=int, default=3, help="Runs per backend (median).")
    p.add_argument("--json", action="store_true", help="Print JSON only.")
    a = p.parse_args()
    from tests.support.postgres import Postgres, find_bindir

    server = Postgres().start() if find_bindir() else None
    try:
        result = measure(server.new_database if server else None, a.events, a.runs)
    finally:
        if server:
            server.stop()
    print(json.dumps(result, indent=None if a.json else 2))
