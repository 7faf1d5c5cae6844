"""The console's weekly figures from alerts worked on a controlled clock, on both stores:
violations by type, rectified by the deadline or not, median times, offline boxes, rankings."""

from __future__ import annotations

from cloud.console.accounts import Session
from cloud.console.figures import rankings, week_of, weekly
from cloud.store import Store
from tests.test_alerts_engine import T0, act, ev, feed, store, violation

__all__ = ["store"]  # the fixture, on SQLite and on PostgreSQL
WANG = Session("wang", "supervisor", "xianan", "")
CHEN = Session("chen", "leader", "city", "")


def rectify(s: Store, alert: str, seq: int, now: float) -> None:
    feed(s, [ev("rectification", {"alert": alert, "note": "done"}, seq)], now)


def test_a_weeks_figures(store: Store) -> None:
    feed(store, [ev("violation", violation("cam1", "rodent"), 1)], T0)
    feed(store, [ev("violation", violation("cam2", "smoking"), 2)], T0 + 60)
    first, second = sorted(store.alerts.list(), key=lambda a: a["first_seen"])
    act(store, first["id"], "ack", now=T0 + 600)  # 10 min to acknowledge
    act(store, first["id"], "request_rectification", now=T0 + 1200, due_s=3600)
    rectify(store, first["id"], 3, T0 + 2400)  # 20 min: on time
    act(store, second["id"], "ack", now=T0 + 60 + 1800)  # 30 min
    act(store, second["id"], "request_rectification", now=T0 + 3000, due_s=3600)
    rectify(store, second["id"], 4, T0 + 3000 + 7200)  # 2 h: late
    (row,) = weekly(store.db, WANG, 1, T0 + 86400 * 0.5)
    assert row["week"] == week_of(T0).strftime("%Y-%m-%d")
    assert row["by_type"] == {"rodent": 1, "smoking": 1} and row["violations"] == 2
    assert row["on_time_share"] == 0.5
    assert row["median_ack_h"] == round((600 + 1800) / 2 / 3600, 2)
    assert row["median_rectify_h"] == round((1200 + 7200) / 2 / 3600, 2)
    assert weekly(store.db, Session("li", "supervisor", "chibi", ""), 1, T0 + 3600) == []
    ranks = rankings([row], store.db, CHEN, T0 + 86400)
    assert ranks["districts"] == [{"district": "xianan", "violations": 2, "on_time_share": 0.5}]
    assert [(s["site"], s["n"]) for s in ranks["sites"]] == [("s1", 2)]


def test_weeks_start_on_monday_in_china() -> None:
    monday = week_of(T0)
    assert monday.weekday() == 0 and (monday.hour, monday.minute) == (0, 0)
    assert monday.utcoffset() is not None and monday.utcoffset().total_seconds() == 8 * 3600
    assert week_of(monday.timestamp()) == monday
    assert week_of(monday.timestamp() - 1) < monday
