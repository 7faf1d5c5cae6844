"""The edge outbox: sequence, validation, bounds and the full policies, marks, disk full."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from edge.config import OutboxSettings
from edge.store.outbox import Outbox, OutboxError, OutboxFull
from shared.codec import batch_payload, decode_batch


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, clock: Clock | None = None, **limits: object) -> Outbox:
    clock = clock or Clock()  # time passing: both clocks move together
    settings = OutboxSettings(**limits)
    return Outbox(tmp_path / "outbox.db", "dev1", "site1", settings, clock=clock, monotonic=clock)


def test_events_get_increasing_seqs_and_decode_in_the_cloud(tmp_path: Path) -> None:
    ob = make(tmp_path)
    q = [ob.enqueue("test", {"n": i}) for i in range(5)]
    assert [x.seq for x in q] == [1, 2, 3, 4, 5]
    out = decode_batch(batch_payload([p.body for p in ob.pending()]), "dev1")
    assert [str(e.id) for e in out.events] == [x.id for x in q]
    assert not out.rejected


def test_bad_events_are_refused_before_commit(tmp_path: Path) -> None:
    ob = make(tmp_path)
    with pytest.raises(OutboxError, match="unknown event kind"):
        ob.enqueue("nope", {})
    with pytest.raises(OutboxError, match="bad data"):
        ob.enqueue("test", {"n": "not a number"})
    with pytest.raises(OutboxError, match="timezone"):
        ob.enqueue("test", {}, ts=datetime(2026, 1, 1))
    with pytest.raises(OutboxError, match="bad data"):
        ob.enqueue("test", {"note": "x" * 5000})
    assert ob.last_seq() == 0 and ob.stats().depth == 0


def test_seq_is_never_reused_after_rows_are_gone(tmp_path: Path) -> None:
    clock = Clock()
    ob = make(tmp_path, clock, keep_confirmed_s=0)
    for _ in range(3):
        ob.enqueue("test", {})
    ob.mark_confirmed([(1, 3)])
    clock.now += 1
    ob.maintain()
    assert ob.pending() == [] and ob.recent() == []
    ob.close()
    ob = make(tmp_path, clock)
    assert ob.enqueue("test", {}).seq == 4


def test_drop_oldest_policy_makes_room_and_counts(tmp_path: Path) -> None:
    ob = make(tmp_path, max_events=10, when_full="drop_oldest")
    for i in range(15):
        ob.enqueue("test", {"n": i})
    st = ob.stats()
    assert st.depth == 10 and st.dropped == 5 and st.rejected == 0
    assert [json.loads(p.body)["data"]["n"] for p in ob.pending()] == list(range(5, 15))


def test_reject_new_policy_refuses_and_counts(tmp_path: Path) -> None:
    ob = make(tmp_path, max_events=10, when_full="reject_new")
    for i in range(10):
        ob.enqueue("test", {"n": i})
    for _ in range(3):
        with pytest.raises(OutboxFull, match="reject_new"):
            ob.enqueue("test", {"n": 99})
    st = ob.stats()
    assert st.depth == 10 and st.rejected == 3 and st.dropped == 0
    assert [json.loads(p.body)["data"]["n"] for p in ob.pending()] == list(range(10))
    ob.mark_confirmed([(1, 1)])  # room again once the cloud confirms
    assert ob.enqueue("test", {"n": 10}).seq == 11


def test_byte_bound_applies_too(tmp_path: Path) -> None:
    ob = make(tmp_path, max_bytes=64 * 1024, when_full="drop_oldest")
    for _ in range(40):
        ob.enqueue("test", {"note": "x" * 3000})
    st = ob.stats()
    assert st.bytes <= 64 * 1024 and st.dropped > 0 and st.depth + st.dropped == 40


def test_old_unconfirmed_events_expire_and_are_counted(tmp_path: Path) -> None:
    clock = Clock()
    ob = make(tmp_path, clock, max_age_s=100)
    ob.enqueue("test", {})
    clock.now += 50
    ob.enqueue("test", {})
    assert ob.stats().oldest_age_s == 50
    clock.now += 60
    ob.maintain()
    st = ob.stats()
    assert st.expired == 1 and st.depth == 1 and st.oldest_age_s == 60


def test_delivered_is_not_confirmed(tmp_path: Path) -> None:
    ob = make(tmp_path)
    for _ in range(4):
        ob.enqueue("test", {})
    ob.mark_delivered([1, 2, 3])
    assert ob.stats().depth == 4, "a PUBACK alone does not end an event's life"
    assert ob.mark_confirmed([(1, 2), (4, 4)]) == 3
    assert [p.seq for p in ob.pending()] == [3]
    assert ob.counters()["delivered"] == 4 and ob.counters()["confirmed"] == 3


def test_another_process_can_enqueue_while_the_agent_holds_the_file(tmp_path: Path) -> None:
    a = make(tmp_path)
    b = make(tmp_path)
    a.enqueue("test", {"n": 1})
    b.enqueue("test", {"n": 2})
    a.enqueue("test", {"n": 3})
    assert [p.seq for p in a.pending()] == [1, 2, 3]
    assert a.stats().depth == 3


def test_disk_full_is_reported_and_nothing_half_written(tmp_path: Path) -> None:
    ob = make(tmp_path)
    ob.enqueue("test", {})
    (pages,) = ob.db.conn.execute("PRAGMA page_count").fetchone()
    ob.db.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now "full"
    with pytest.raises(OutboxFull, match="disk full"):
        ob.enqueue_many([("test", {"note": "x" * 3000}, None) for _ in range(20)])
    assert ob.stats().depth == 1
    assert [p.seq for p in ob.pending()] == [1]
    ob.db.conn.execute("PRAGMA max_page_count = 1073741823")
    assert ob.enqueue("test", {}).seq == 2


def test_wal_and_full_sync_are_on(tmp_path: Path) -> None:
    ob = make(tmp_path)
    assert ob.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ob.db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert isinstance(ob.db.conn, sqlite3.Connection)


def test_refusals_on_a_full_disk_are_counted_and_saved_when_space_returns(tmp_path: Path) -> None:
    ob = make(tmp_path)
    ob.enqueue("test", {})
    (pages,) = ob.db.conn.execute("PRAGMA page_count").fetchone()
    ob.db.conn.execute(f"PRAGMA max_page_count = {pages}")
    for _ in range(3):
        with pytest.raises(OutboxFull):
            ob.enqueue_many([("test", {"note": "x" * 3000}, None) for _ in range(5)])
    stats = ob.stats()
    assert stats.disk_full and stats.rejected == 15, "counted while nothing can be written"
    ob.db.conn.execute("PRAGMA max_page_count = 1073741823")
    ob.enqueue("test", {})
    again = make(tmp_path)  # another process, or the agent after a restart
    assert again.stats().rejected == 15 and not again.stats().disk_full


def test_the_demo_source_goes_on_after_a_refusal(tmp_path: Path) -> None:
    from edge.agent import Agent
    from tests.conftest import edge_config, wait_for

    cfg = edge_config(
        tmp_path,
        "mqtt://127.0.0.1:9",  # nobody there: the events stay queued
        outbox={"max_events": 10, "when_full": "reject_new"},
        demo={"sample_every_s": 0.005, "sample_count": 30},
    )
    agent = Agent(cfg)
    agent.start()
    try:

        def made() -> int:
            s = agent.outbox.stats()
            return s.depth + s.rejected

        wait_for(lambda: made() == 31, what="every sample (and device_started) tried")
        stats = agent.outbox.stats()
        assert stats.depth == 10 and stats.rejected == 21, "the source went on after refusals"
    finally:
        agent.stop()


def test_a_wall_clock_stepped_forward_ages_nothing(tmp_path: Path) -> None:
    """A box without a real-time clock boots with an old date, queues events offline, then NTP
    steps its clock forward by months: the events are not 'older than max_age' for that."""
    wall, mono = Clock(), Clock()
    ob = Outbox(
        tmp_path / "o.db", "d1", "s1", OutboxSettings(max_age_s=100), clock=wall, monotonic=mono
    )
    ob.enqueue("test", {})
    wall.now += 90 * 86400  # the step
    mono.now += 10  # ten seconds went by
    ob.maintain()
    assert ob.stats().depth == 1 and ob.stats().expired == 0
    wall.now += 200
    mono.now += 200  # really older than max_age now
    ob.maintain()
    assert ob.stats().expired == 1


def test_the_sync_loops_writes_wait_out_a_refusing_database(tmp_path: Path) -> None:
    """Marks the database refuses are kept and written later; the refusal never escapes (it
    used to end the MQTT session and reconnect several times a second)."""
    from edge.sync.pending import OutboxWrites
    from tests.conftest import wait_for

    ob = make(tmp_path)
    for _ in range(3):
        ob.enqueue("test", {})
    writes = OutboxWrites(ob, None)
    ob.db.conn.execute("PRAGMA query_only = ON")  # the database refuses every write
    writes.delivered += [1, 2, 3]
    writes.confirms += [(1, 2)]
    writes.flush()
    assert writes.failing and writes.waiting
    writes.flush()  # too soon to try again: nothing happens, nothing raised
    ob.db.conn.execute("PRAGMA query_only = OFF")

    def flushed() -> bool:
        writes.flush()
        return not writes.waiting

    wait_for(flushed, timeout=10, what="the marks written after the backoff")
    assert writes.failing is None and writes.confirmed_events == 2
    assert [p.seq for p in ob.pending()] == [3]


def test_the_resend_timer_is_deaf_to_the_wall_clock() -> None:
    """What waits for a confirmation is timed on the clock it is given (the monotonic one in
    the agent); a wall clock stepped back two hours cannot hold a resend."""
    from edge.sync.pending import Unconfirmed

    mono = Clock()
    waiting = Unconfirmed(clock=mono)
    waiting.acked([1, 2, 3])
    waiting.snap_acked("s1")
    mono.now += 30
    assert waiting.waited() == 30
    waiting.confirmed([(1, 2)], ["s1"])
    assert waiting.waited() == 30, "3 still waits since its PUBACK"
    waiting.confirmed([(3, 3)], [])
    assert waiting.waited() == 0
