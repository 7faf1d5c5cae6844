"""The alert engine on a real store, with a clock the test controls."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.alerts.engine import AlertEngine
from cloud.collector import Incoming, classify
from cloud.config import AlertSettings
from cloud.store import Store
from shared.alerts import TRANSITIONS
from shared.codec import batch_payload, envelope_json
from shared.ids import uuid7
from tests.conftest import register

T0 = 1_800_000_000.0


def ev(kind: str, data: dict[str, Any], seq: int, device: str = "k1", site: str = "s1") -> str:
    return envelope_json(
        event_id=str(uuid7()),
        device=device,
        site=site,
        seq=seq,
        ts="2026-11-26T04:00:00Z",
        kind=kind,
        data_json=json.dumps(data),
    )


def violation(camera: str = "cam1", vtype: str = "animal_in_kitchen") -> dict[str, Any]:
    return {
        "camera": camera,
        "type": vtype,
        "label": "Cat",
        "score": 0.8,
        "box": [1, 2, 3, 4],
        "frame": [640, 360],
        "model": "ssd_oidv4",
        "snapshot": str(uuid7()),
    }


@pytest.fixture
def store(store_target: str | Path, tmp_path: Path) -> Store:
    s = Store(store_target, tmp_path / "snaps", engine=AlertEngine(AlertSettings(), "http://web"))
    s.sites.set("s1", "xianan", "canteen")
    register(s, "k1", "s1", district="xianan")
    register(s, "k9", "elsewhere")
    s.sites.add_supervisor("wang", "xianan")
    s.sites.add_supervisor("li", "chibi")
    return s


def feed(
    store: Store, bodies: list[str], now: float = T0, device: str = "k1", topic_kind: str = "events"
) -> None:
    msgs = [Incoming(None, 1, 1, f"shian/v1/dev/{device}/{topic_kind}", batch_payload(bodies))]
    store.write(*classify(msgs), received=now)


def act(
    store: Store, alert: str, action: str, sup: str = "wang", now: float = T0, **kw: Any
) -> dict[str, Any]:
    store.write(
        [],
        [],
        [],
        [],
        received=now,
        commands=[
            (sup, json.dumps({"v": 1, "id": "c1", "alert": alert, "action": action, **kw}).encode())
        ],
    )
    replies = [
        json.loads(p)
        for _, t, p, _ in store.outgoing.pending(0, 10_000)
        if t == f"shian/v1/sup/{sup}/reply"
    ]
    return replies[-1]


def published(store: Store, topic_part: str) -> list[dict[str, Any]]:
    return [json.loads(p) for _, t, p, _ in store.outgoing.pending(0, 10_000) if topic_part in t]


def test_repeats_raise_the_count_of_one_open_alert(store: Store) -> None:
    feed(store, [ev("violation", violation(), 1), ev("violation", violation(), 2)])
    feed(store, [ev("violation", violation(), 3)], now=T0 + 60)
    feed(store, [ev("violation", violation("cam2"), 4)])
    alerts = store.alerts.list()
    assert sorted((a["source"], a["count"]) for a in alerts) == [("cam1", 3), ("cam2", 1)]
    a = next(x for x in alerts if x["source"] == "cam1")
    assert a["severity"] == "critical" and a["district"] == "xianan" and a["state"] == "open"
    assert a["snapshot_url"].startswith("http://web/snap/")
    sent = [m for m in published(store, "alerts/xianan/s1") if m["id"] == a["id"]]
    # two in one batch (a box flushing its backlog) make one message, with the count of both;
    # each later batch one more, in order
    assert [(m["version"], m["count"]) for m in sent] == [(2, 2), (3, 3)]


def test_a_redelivered_event_raises_nothing_twice(store: Store) -> None:
    body = ev("violation", violation(), 1)
    feed(store, [body])
    feed(store, [body])  # the broker sent it again (collector restart before its PUBACK)
    (a,) = store.alerts.list()
    assert a["count"] == 1 and len(published(store, "alerts/")) == 1


def test_the_whole_loop_with_a_box_rectifying(store: Store) -> None:
    feed(store, [ev("violation", violation(), 1)])
    (a,) = store.alerts.list()
    assert act(store, a["id"], "ack", now=T0 + 10)["ok"]
    r = act(store, a["id"], "request_rectification", now=T0 + 20, note="seal the hole")
    assert r["ok"] and r["alert"]["state"] == "rectification_requested"
    assert r["alert"]["due"] == datetime.fromtimestamp(T0 + 20 + 7200, UTC).isoformat(
        timespec="seconds"
    ).replace("+00:00", "Z")
    notices = published(store, "/cmd/notice/")
    assert notices and notices[-1]["state"] == "rectification_requested"
    feed(
        store,
        [ev("rectification", {"alert": a["id"], "note": "sealed", "photo": None}, 2)],
        now=T0 + 3600,
    )
    assert published(store, "dev/k1/cmd/reply")[-1]["ok"]
    assert act(store, a["id"], "verify", now=T0 + 7200, note="checked")["ok"]
    done = store.alerts.get(a["id"])
    assert done["state"] == "closed"
    assert [(h["state"], h["actor"]) for h in done["history"]] == [
        ("open", "system"),
        ("acknowledged", "supervisor:wang"),
        ("rectification_requested", "supervisor:wang"),
        ("rectified", "device:k1"),
        ("closed", "supervisor:wang"),
    ]


def test_every_invalid_transition_is_refused_with_its_reason(store: Store) -> None:
    feed(store, [ev("violation", violation(), 1)])
    (a,) = store.alerts.list()
    states = {
        "open": [],
        "acknowledged": ["ack"],
        "rectification_requested": ["request_rectification"],
        "rectified": ["request_rectification", "rectify"],
        "closed": ["close"],
    }
    for state, path in states.items():
        for action, (sources, _target) in TRANSITIONS.items():
            if state in sources or action == "rectify":
                continue
            fresh = store.alerts.list(state="open")
            if not fresh:
                feed(store, [ev("violation", violation(), len(store.alerts.list()) + 10)])
                fresh = store.alerts.list(state="open")
            aid = fresh[0]["id"]
            for step in path:
                if step == "rectify":
                    feed(store, [ev("rectification", {"alert": aid}, 100 + len(path))])
                else:
                    act(store, aid, step)
            before = store.alerts.get(aid)
            assert before["state"] == state
            r = act(store, aid, action)
            assert not r["ok"] and f"cannot {action} an alert that is {state}" in r["reason"]
            assert store.alerts.get(aid)["version"] == before["version"], "nothing changed"
            if state != "closed":
                act(store, aid, "close")
    r = act(store, a["id"], "ack", sup="li")
    assert not r["ok"] and "district" in r["reason"], "li supervises chibi, not xianan"
    r = act(store, a["id"], "ack", sup="nobody")
    assert not r["ok"] and "unknown supervisor" in r["reason"]
    store.write([], [], [], [], commands=[("wang", b"{nope")])
    assert not published(store, "sup/wang/reply")[-1]["ok"]


def test_critical_unacknowledged_escalates_once(store: Store) -> None:
    feed(store, [ev("violation", violation(), 1)])
    tick = lambda t: store.in_transaction(lambda c: store.engine.tick(c, t))  # noqa: E731
    tick(T0 + 899)
    assert published(store, "escalations") == []
    tick(T0 + 901)
    tick(T0 + 1000)
    (esc,) = published(store, "escalations/xianan")
    assert esc["escalated"] == 1 and "not acknowledged" in esc["history"][-1]["note"]


def test_overdue_rectification_escalates_by_itself(store: Store) -> None:
    feed(store, [ev("violation", violation("cam3", "no_mask"), 1)])
    (a,) = store.alerts.list()
    act(store, a["id"], "request_rectification", now=T0, due_s=3600)
    tick = lambda t: store.in_transaction(lambda c: store.engine.tick(c, t))  # noqa: E731
    tick(T0 + 3599)
    assert not published(store, "escalations")
    tick(T0 + 3601)
    tick(T0 + 3700)
    (esc,) = published(store, "escalations/xianan")
    assert "rectification overdue" in esc["history"][-1]["note"]


def test_device_offline_by_will_or_silence_and_back(store: Store) -> None:
    will = {
        "v": 1,
        "device": "k1",
        "site": "s1",
        "state": "offline",
        "reason": "will",
        "ts": datetime.fromtimestamp(T0, UTC).isoformat(),  # the box's clock is right
    }
    feed(store, [], device="k1")
    store.write(
        *classify([Incoming(None, 1, 1, "shian/v1/dev/k1/status", json.dumps(will).encode())]),
        received=T0,
    )
    (a,) = store.alerts.list()
    assert a["type"] == "device_offline" and a["state"] == "open"
    online = dict(will, state="online", reason="")
    store.write(
        *classify([Incoming(None, 1, 1, "shian/v1/dev/k1/status", json.dumps(online).encode())]),
        received=T0 + 5,
    )
    assert store.alerts.get(a["id"])["state"] == "closed"
    store.in_transaction(lambda c: store.engine.tick(c, T0 + 200))  # silent for 195 s
    silent = [x for x in store.alerts.list() if x["state"] == "open"]
    assert len(silent) == 1 and "silent" in silent[0]["title"]


def test_camera_and_fault_alerts_close_when_the_condition_ends(store: Store) -> None:
    feed(
        store,
        [
            ev("camera_offline", {"camera": "cam2", "reason": "no frames"}, 1),
            ev("scale_fault", {"state": "lost", "port": "/dev/ttyUSB0", "reason": "gone"}, 2),
            ev("camera_tampered", {"camera": "cam1", "state": "raised", "problem": "covered"}, 3),
        ],
    )
    assert {a["type"] for a in store.alerts.list(state="open")} == {
        "camera_offline",
        "scale_fault",
        "camera_tampered",
    }
    feed(
        store,
        [
            ev("camera_online", {"camera": "cam2"}, 4),
            ev("scale_fault", {"state": "recovered", "port": "/dev/ttyUSB0", "reason": "gone"}, 5),
            ev("camera_tampered", {"camera": "cam1", "state": "cleared", "problem": "ok"}, 6),
        ],
    )
    assert store.alerts.list(state="open") == []


def test_licences_and_certificates_alert_30_7_and_0_days_ahead(store: Store) -> None:
    today = date(2026, 11, 26)
    n = store.sites.import_certs(
        "site,kind,holder,number,expires\n"
        f"s1,health_certificate,张三,HC-1,{today + timedelta(days=20)}\n"
        f"s1,business_licence,咸宁食堂,BL-9,{today + timedelta(days=400)}\n"
    )
    assert n == 2
    engine = store.engine

    def day(d: date) -> None:
        t = datetime(d.year, d.month, d.day, 9, tzinfo=timezone(timedelta(hours=8))).timestamp()
        store.in_transaction(lambda c: engine.tick(c, t))

    day(today)
    (a,) = store.alerts.list()
    assert (a["type"], a["severity"], a["source"]) == (
        "health_certificate_expiring",
        "minor",
        "HC-1",
    )
    day(today)  # the same day again: nothing new
    assert store.alerts.get(a["id"])["count"] == 1
    day(today + timedelta(days=13))
    assert store.alerts.get(a["id"])["severity"] == "major"
    day(today + timedelta(days=20))
    assert (
        store.alerts.get(a["id"])["severity"] == "critical"
        and store.alerts.get(a["id"])["count"] == 3
    )
    store.sites.import_certs(
        f"site,kind,holder,number,expires\n"
        f"s1,health_certificate,张三,HC-1,{today + timedelta(days=385)}\n"
    )
    day(today + timedelta(days=21))
    assert store.alerts.get(a["id"])["state"] == "closed", "renewed"
    with pytest.raises(ValueError, match="row 2: kind"):
        store.sites.import_certs("site,kind,holder,number,expires\ns1,passport,x,1,2027-01-01\n")


def test_no_morning_check_by_the_sites_time_raises_one_alert(store: Store) -> None:
    store.sites.set("s1", "xianan", "canteen", morning_check_by="09:00")
    cst = timezone(timedelta(hours=8))
    at = lambda h, m: datetime(2026, 11, 26, h, m, tzinfo=cst).timestamp()  # noqa: E731
    tick = lambda t: store.in_transaction(lambda c: store.engine.tick(c, t))  # noqa: E731
    tick(at(8, 59))
    assert store.alerts.list() == []
    tick(at(9, 1))
    tick(at(9, 2))
    (a,) = store.alerts.list()
    assert a["type"] == "no_morning_check" and a["count"] == 1 and a["severity"] == "major"
    # the next day the check is done before 09:00: no alert
    check = {"staff": "李", "temperature": 36.4, "symptoms": [], "fit": True}
    feed(store, [ev("morning_check", check, 1)], now=at(8, 0) + 86400)
    tick(at(9, 30) + 86400)
    assert len(store.alerts.list()) == 1


def test_a_retained_will_seen_again_after_a_collector_restart_counts_once(store: Store) -> None:
    will = json.dumps(
        {
            "v": 1,
            "device": "k1",
            "site": "s1",
            "state": "offline",
            "reason": "will",
            "ts": "2026-11-26T04:00:00Z",
        }
    ).encode()
    for _ in range(3):  # the broker hands the retained will to every new subscription
        store.write(*classify([Incoming(None, 1, 1, "shian/v1/dev/k1/status", will)]), received=T0)
    (a,) = store.alerts.list()
    assert a["type"] == "device_offline" and a["count"] == 1


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_any_certificates_csv_is_imported_or_refused_with_a_reason(
    tmp_path_factory: Any, text: str
) -> None:
    store = Store(tmp_path_factory.mktemp("certs") / "c.db", engine=AlertEngine(AlertSettings()))
    try:
        n = store.sites.import_certs("site,kind,holder,number,expires\n" + text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert n >= 1 and store.sites.table("certs")
    store.close()
