"""PostgreSQL's events by month: the migration, months made ahead, redeliveries found across
months, old months dropped, and the queries the console, the public page and the alert engine
run reading only their months, by index (EXPLAIN on a real server with a season of rows)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud import ranges
from cloud.alerts.engine import AlertEngine
from cloud.config import AlertSettings, StoreSettings
from cloud.console import centre, readings, sites
from cloud.console.accounts import Session
from cloud.db import Conn, Db, open_database
from cloud.db import migrations as mig
from cloud.db.partitions import Month
from cloud.events import Events
from cloud.live import views
from cloud.site_page import record
from cloud.store import Store
from shared.ids import uuid7
from shared.models import Envelope
from tests.conftest import register

pytestmark = pytest.mark.real

NOW = datetime.now(UTC).timestamp()


def _event(device: str, seq: int, made: float) -> Envelope:
    return Envelope(
        v=1,
        id=str(uuid7(int(made * 1000))),
        device=device,
        site="canteen-001",
        seq=seq,
        ts=datetime.fromtimestamp(made, UTC),
        kind="test",
        data={"n": seq},
    )


def _months(db: Db) -> dict[str, int]:
    rows = db.query("SELECT tableoid::regclass::text AS part, count(*) AS n FROM events GROUP BY 1")
    return {r["part"]: r["n"] for r in rows}


def test_the_migration_moves_an_old_store_into_months(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mig, "MIGRATIONS", [m for m in mig.MIGRATIONS if m[0] < 14])
    db = open_database(postgres_url)
    old = Month.of(NOW).minus(5)
    rows = [
        (str(uuid.uuid4()), "box-1", "s", i, "t", "test", "{}", old.start + i) for i in range(5)
    ]
    rows += [(str(uuid.uuid4()), "box-1", "s", 9, "t", "test", "{}", NOW)]
    with db.tx() as conn:
        conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?)", rows)
    monkeypatch.undo()
    assert mig.migrate(db) == [14]
    assert _months(db) == {old.table: 5, Month.of(NOW).table: 1}
    parts = {r["relname"] for r in db.query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events'")}  # fmt: skip
    # every month from the oldest row to two ahead, and the default
    expect, m = {"events_default"}, old
    while m.start <= Month.of(NOW).next().next().start:
        expect.add(m.table)
        m = m.next()
    assert parts == expect
    db.close()


def test_redelivery_across_months_stored_once_and_old_months_dropped(
    tmp_path: Path, postgres_url: str
) -> None:
    store = Store(postgres_url, tmp_path / "snaps", keep_months=4)
    register(store, "box-1", "canteen-001")
    month = Month.of(NOW)
    last_month = month.minus(1)
    store.partitions.ensure(last_month.start)
    late = last_month.next().start - 60  # the last minute of last month
    first = [_event("box-1", i, late - 10) for i in range(1, 4)]
    res = store.write(first, [], [], received=late)
    assert res.inserted == 3
    # the confirmation was lost; the box sends them again early this month
    again = store.write([*first, _event("box-1", 4, late)], [], [], received=month.start + 120)
    assert (again.inserted, again.duplicates) == (1, 3)
    assert _months(store.db) == {last_month.table: 3, month.table: 1}
    # the retention rule: later on, the months past keep_months are dropped whole
    later = month.start + 200 * 86400  # more than 4 months after this month ended
    store.partitions.ensure(later)
    dropped = store.partitions.prune(later)
    assert last_month.table in dropped and month.table in dropped
    assert _months(store.db) == {}
    names = {str(p["name"]) for p in store.partitions.months()}
    assert "events_default" in names
    assert store.partitions.ensure(later) == []  # made ahead once, not further at each call
    m = Month.of(later)  # its month, the 4 before it kept, 2 ahead, and the default
    assert names == {"events_default"} | {m.minus(k).table for k in range(-2, 5)}
    store.close()


def test_keep_months_must_cover_the_dedupe_window() -> None:
    with pytest.raises(ValueError, match="keep at least 4"):
        StoreSettings(keep_months=2)
    assert StoreSettings(keep_months=4).keep_months == 4


class Recorder:
    """The store's database, noting every statement that reads ``events``."""

    def __init__(self, db: Db) -> None:
        self.db, self.dialect, self.seen = db, db.dialect, []  # type: ignore[var-annotated]

    def _note(self, sql: str, params: Sequence[Any]) -> None:
        if re.search(r"\bFROM events\b", sql):
            self.seen.append((sql, list(params)))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._note(sql, params)
        return self.db.query(sql, params)

    @contextmanager
    def tx(self, locks: Iterable[str] = ()) -> Iterator[Conn]:
        with self.db.tx(locks) as conn:
            outer = self

            class Noting:
                dialect = conn.dialect

                def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
                    outer._note(sql, params)
                    return conn.execute(sql, params)

                def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any:
                    return conn.executemany(sql, params)

                def lock(self, *keys: str) -> None:
                    conn.lock(*keys)

            yield Noting()

    def describe(self) -> str:
        return self.db.describe()

    def close(self) -> None:
        self.db.close()


def _season(db: Db, months: list[Month]) -> None:
    """A season of rows: 600 sites, each month ~90,000 events of seven kinds."""
    kinds = "ARRAY['detection','heartbeat','morning_check','disinfection','sensor_minute'," \
        "'live_offer','camera_offline']"  # fmt: skip
    with db.tx() as conn:
        for m in months:
            end = min(m.next().start, NOW - 1)
            conn.execute(
                "INSERT INTO events (id, device, site, seq, ts, kind, data, received)"
                " SELECT gen_random_uuid()::text, 'box-' || (g % 600), 'site-' || (g % 600), g,"
                " '2026-01-01T00:00:00Z', (" + kinds + ")[1 + (g / 600) % 7],"
                ' \'{"camera":"cam1","minute":"2026-01-01T00:00:00Z"}\','
                f" {m.start!r} + (g::float8 / 90000) * ({end!r} - {m.start!r})"
                " FROM generate_series(1, 90000) AS g"
            )
        conn.execute("ANALYZE events")


def _plan(db: Db, sql: str, params: list[Any]) -> str:
    rows = db.query("EXPLAIN " + sql, params)
    return "\n".join(str(next(iter(r.values()))) for r in rows)


def test_the_queries_read_their_months_by_index(tmp_path: Path, postgres_url: str) -> None:
    store = Store(postgres_url, tmp_path / "snaps")
    months = [Month.of(NOW).minus(k) for k in (4, 3, 2, 1, 0)]
    store.partitions.ensure(months[0].start)
    _season(store.db, months)
    rec = Recorder(store.db)
    leader = Session("wang", "leader", "", "x")
    with store.db.tx() as conn:
        conn.execute(
            "INSERT INTO sites (site, district, name, morning_check_by) VALUES"
            " ('site-7', 'd1', 'Canteen', '00:00')"
        )
    db: Any = rec
    record(db, "site-7", NOW)  # the public page
    sites.site(db, leader, "site-7", NOW)  # the console's site page
    readings.readings(db, "site-7", NOW)  # its sensors today
    centre.state(db, leader, NOW, live=True)  # the command centre wall
    views.views(db, "site-7")  # the site's public cameras
    views.camera_online(db, "site-7", "box-7", "cam1")
    engine = AlertEngine(AlertSettings())
    with rec.tx() as conn:
        engine.tick(conn, NOW)  # the morning checks not made
        held = ranges.read(conn, ["box-7"])
        store.events.new(conn, [_event("box-7", 1, NOW)], NOW, held)  # redeliveries
    Events(db).list(device="box-7")  # shian-cloud events
    assert len(rec.seen) >= 8, rec.seen
    old, full = months[0].table, set(_months(store.db))
    assert full == {m.table for m in months}
    for sql, params in rec.seen:
        plan = _plan(store.db, sql, params)
        # an empty month ahead (nothing to read) may be scanned; a month of rows never
        scans = set(re.findall(r"Seq Scan on (events_\w+)", plan)) & full
        assert not scans, f"{sql}\nreads whole months {scans}:\n{plan}"
        if "received >" in sql:  # bounded to this month or two: the oldest month is pruned
            assert old not in plan, f"{sql}\nreads {old}:\n{plan}"
    store.close()
