"""A storm of last wills becomes one incident per district, on both store backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud.alerts.engine import AlertEngine
from cloud.collector import Incoming, classify
from cloud.config import AlertSettings
from cloud.store import Store
from tests.conftest import register

T0 = 1_795_662_000.0  # 2026-11-26 03:00 UTC: the boxes' clocks are right


@pytest.fixture
def store(store_target: str | Path, tmp_path: Path) -> Store:
    settings = AlertSettings(storm_devices=5, storm_window_s=300, incident_update_s=10)
    s = Store(store_target, tmp_path / "snaps", engine=AlertEngine(settings, "http://web"))
    for i in range(40):
        s.sites.set(f"s{i}", "xianan" if i < 30 else "chibi")
        register(s, f"b{i}", f"s{i}", district="xianan" if i < 30 else "chibi")
    return s


def status(device: str, site: str, state: str, reason: str = "", ts: str = "03:00:00") -> bytes:
    body = {"v": 1, "device": device, "site": site, "state": state, "reason": reason}
    return json.dumps({**body, "ts": f"2026-11-26T{ts}Z"}).encode()


def send(store: Store, payloads: list[tuple[str, bytes]], now: float) -> None:
    msgs = [Incoming(None, 1, 1, f"shian/v1/dev/{d}/status", p) for d, p in payloads]
    store.write(*classify(msgs), received=now)


def messages(store: Store) -> list[dict[str, Any]]:
    return [json.loads(p) for _, t, p, _ in store.outgoing.pending(0, 100_000)]


def test_a_power_cut_is_one_incident_per_district_with_every_box(store: Store) -> None:
    boxes = [(f"b{i}", f"s{i}") for i in range(40)]
    send(store, [(d, status(d, s, "online", ts="03:00:00")) for d, s in boxes], T0)
    # the wills arrive in small batches, as the broker notices each dead connection
    for n in range(0, 40, 3):
        send(store, [(d, status(d, s, "offline", "will")) for d, s in boxes[n : n + 3]], T0 + 60)
    for t in range(0, 31, 1):
        store.in_transaction(lambda c, t=t: store.engine.tick(c, T0 + 61 + t))  # type: ignore[union-attr]
    open_ = [a for a in store.alerts.list() if a["state"] != "closed"]
    assert sorted((a["type"], a["district"]) for a in open_) == [
        ("district_outage", "chibi"),
        ("district_outage", "xianan"),
    ]
    xianan = next(a for a in open_ if a["district"] == "xianan")
    assert xianan["severity"] == "critical" and xianan["site"] == "district"
    sent = messages(store)
    last = [m for m in sent if m["id"] == xianan["id"]][-1]
    assert sorted(b["device"] for b in last["boxes"]) == sorted(d for d, _ in boxes[:30])
    assert last["title"].startswith("30 of 30 boxes offline")
    # what a supervisor of xianan received: 4 box alerts opened then merged, and the incident
    # (opened, then republished at most every 10 s): not 30 alerts
    to_xianan = [m for m in sent if m["district"] == "xianan"]
    per_box = [m for m in to_xianan if m["type"] == "device_offline"]
    assert len({m["id"] for m in per_box}) == 4
    assert all(m["state"] == "closed" for m in per_box if m["version"] > 1)
    assert len([m for m in to_xianan if m["type"] == "district_outage"]) <= 5
    # boxes come back: the incident shows each return, and closes with the last one
    send(store, [(d, status(d, s, "online", ts="05:00:00")) for d, s in boxes[:29]], T0 + 600)
    store.in_transaction(lambda c: store.engine.tick(c, T0 + 620))  # type: ignore[union-attr]
    latest = [m for m in messages(store) if m["id"] == xianan["id"]][-1]
    assert latest["title"].startswith("1 of 30 boxes offline") and latest["state"] != "closed"
    assert sum(b["back"] is None for b in latest["boxes"]) == 1
    send(store, [("b29", status("b29", "s29", "online", ts="05:00:01"))], T0 + 630)
    assert store.alerts.get(xianan["id"])["state"] == "closed"  # type: ignore[index]


def test_a_few_boxes_offline_are_still_alerts_of_their_own(store: Store) -> None:
    send(store, [(f"b{i}", status(f"b{i}", f"s{i}", "offline", "will")) for i in range(4)], T0)
    alerts = store.alerts.list()
    assert len(alerts) == 4 and {a["type"] for a in alerts} == {"device_offline"}


def test_the_same_status_from_two_collectors_is_taken_once(store: Store) -> None:
    will = status("b1", "s1", "offline", "will")
    send(store, [("b1", will)], T0)
    send(store, [("b1", will)], T0 + 1)  # the other collector's copy of the same message
    (a,) = store.alerts.list()
    assert a["count"] == 1


def test_silence_is_not_called_while_the_collector_cannot_hear(store: Store) -> None:
    engine = store.engine
    assert engine is not None
    send(store, [("b1", status("b1", "s1", "online"))], T0)
    engine.connected_since = None  # the collector lost the broker
    store.in_transaction(lambda c: engine.tick(c, T0 + 1000))
    assert store.alerts.list() == []
    engine.connected_since = T0 + 1000  # back; the boxes get heartbeat_timeout_s to reconnect
    store.in_transaction(lambda c: engine.tick(c, T0 + 1060))
    assert store.alerts.list() == []
    store.in_transaction(lambda c: engine.tick(c, T0 + 1121))
    (a,) = store.alerts.list()
    assert a["type"] == "device_offline" and "silent" in a["title"]


def test_an_incident_closed_by_hand_stays_closed_when_its_boxes_return(store: Store) -> None:
    send(store, [(f"b{i}", status(f"b{i}", f"s{i}", "offline", "will")) for i in range(6)], T0)
    (inc,) = [a for a in store.alerts.list() if a["type"] == "district_outage"]
    store.sites.add_supervisor("wang", "xianan")
    store.in_transaction(
        lambda c: store.engine.act(c, T0 + 5, inc["id"], "close", "supervisor:wang", "known cut")  # type: ignore[union-attr]
    )
    versions = store.alerts.get(inc["id"])["version"]  # type: ignore[index]
    send(store, [("b0", status("b0", "s0", "online", ts="05:00:00"))], T0 + 60)
    after = store.alerts.get(inc["id"])
    assert after is not None and after["state"] == "closed" and after["version"] == versions


def test_a_status_taken_late_by_another_collector_is_not_applied_over_a_newer_one(
    store: Store,
) -> None:
    """Ordered by the box's run, session and number, never by its clock (stamped at random
    here: a stepped clock changes nothing)."""
    run1, run2 = "a" * 32, "b" * 32
    store.engine.s.clock_skew_s = 3600  # type: ignore[union-attr]  # clocks are tested elsewhere

    def st(state: str, reason: str, run: str, sess: int, n: int, seq: int) -> tuple[str, bytes]:
        body = json.loads(status("b1", "s1", state, reason))
        stamp = datetime.fromtimestamp(T0 + 120 - 40 * n, UTC).isoformat()  # going back
        more = {"ts": stamp, "run": run, "sess": sess, "n": n, "last_seq": seq}
        return "b1", json.dumps({**body, **more}).encode()

    def state() -> str:
        return str(next(d for d in store.devices.list() if d["device"] == "b1")["state"])

    send(store, [st("online", "", run1, 1, 2, 10)], T0)
    send(store, [st("offline", "will", run1, 1, 1, 10)], T0 + 100)  # the session ended
    send(store, [st("online", "", run1, 1, 3, 12)], T0 + 101)  # its heartbeat, late
    assert state() == "offline"
    assert [a["type"] for a in store.alerts.list() if a["state"] != "closed"] == ["device_offline"]
    send(store, [st("online", "", run1, 2, 5, 12)], T0 + 400)  # a new session
    assert state() == "online"
    send(store, [st("offline", "will", run1, 1, 1, 10)], T0 + 401)  # the old will, late
    assert state() == "online"
    send(store, [st("online", "", run2, 1, 2, 13)], T0 + 500)  # the agent restarted
    send(store, [st("offline", "will", run1, 2, 4, 12)], T0 + 501)  # the old run's will
    assert state() == "online"
    send(store, [st("online", "", run1, 2, 6, 12)], T0 + 502)  # the old run, late
    assert state() == "online"
    assert [a for a in store.alerts.list() if a["state"] != "closed"] == []
