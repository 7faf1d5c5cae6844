"""Rollouts in the collector's database (SQLite and PostgreSQL): stages move on when every box
reached is done with the update, too many failures halt and withdraw, and a later rollout's
update is never withdrawn by an older one's halt."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from cloud.config import CloudConfig
from cloud.fleet.keys import FleetKey
from cloud.fleet.rollouts import Rollouts
from cloud.store import Store
from tests.conftest import register

PATCH = {"sync": {"heartbeat_s": 7}}


@pytest.fixture
def fleet(store_target: str | Path, tmp_path: Path) -> tuple[Store, Rollouts]:
    store = Store(store_target, tmp_path / "snaps")
    for n in range(1, 5):
        register(store, f"b{n}", f"s{n}")
    cfg = CloudConfig(data_dir=tmp_path)
    FleetKey(tmp_path / "fleet").public_b64(create=True)
    return store, Rollouts(cfg)


def outcome(store: Store, device: str, what: str) -> None:
    (row,) = store.db.query(
        "SELECT id FROM fleet_updates WHERE device = ? ORDER BY n DESC LIMIT 1", (device,)
    )
    with store.db.tx() as conn:
        conn.execute("UPDATE fleet_updates SET state = ? WHERE id = ?", (what, row["id"]))


def tick(store: Store, rollouts: Rollouts) -> None:
    store.in_transaction(lambda conn: rollouts.tick(conn, time.time()))


def rollout(store: Store, rid: str) -> dict[str, Any]:
    return store.db.query("SELECT * FROM fleet_rollouts WHERE id = ?", (rid,))[0]


def sent_to(store: Store) -> list[tuple[str, bool]]:
    rows = store.db.query("SELECT topic, payload FROM alert_outbox ORDER BY seq")
    return [(r["topic"].split("/")[3], bool(r["payload"])) for r in rows]


def test_a_stage_moves_on_when_its_boxes_are_done_even_with_an_allowed_failure(
    fleet: tuple[Store, Rollouts],
) -> None:
    store, rollouts = fleet
    targets = ["b1", "b2", "b3", "b4"]
    rid = store.in_transaction(
        lambda c: rollouts.create(c, "config", PATCH, targets, [50, 100], time.time(), 30, 1)
    )
    first = [d for d, _ in sent_to(store)]
    assert len(first) == 2
    outcome(store, first[0], "applied")
    outcome(store, first[1], "rolled_back")  # one failure is allowed
    tick(store, rollouts)
    assert rollout(store, rid)["stage"] == 1 and len(sent_to(store)) == 4
    for d in set(targets) - set(first):
        outcome(store, d, "applied")
    tick(store, rollouts)
    assert rollout(store, rid)["state"] == "done"
    numbers = store.db.query("SELECT device, n FROM fleet_updates ORDER BY device")
    assert {r["n"] for r in numbers} == {1}


def test_a_halt_withdraws_only_what_is_still_its_own(fleet: tuple[Store, Rollouts]) -> None:
    store, rollouts = fleet
    now = time.time()
    a = store.in_transaction(
        lambda c: rollouts.create(c, "config", PATCH, ["b1", "b2", "b3"], [100], now, 30, 0)
    )
    b = store.in_transaction(
        lambda c: rollouts.create(c, "config", {"sync": {"heartbeat_s": 9}}, ["b1"], [100], now)
    )
    states = {r["device"]: r["state"] for r in store.db.query(
        "SELECT device, state FROM fleet_updates WHERE rollout = ?", (a,))}  # fmt: skip
    assert states["b1"] == "superseded"
    outcome(store, "b2", "refused")
    tick(store, rollouts)
    assert rollout(store, a)["state"] == "halted" and "b2" in rollout(store, a)["note"]
    withdrawn = [d for d, payload in sent_to(store) if not payload]
    assert withdrawn == ["b3"], "b1's retained update is rollout B's and stays"
    assert rollout(store, b)["state"] == "running"
    (b1,) = store.db.query("SELECT n FROM fleet_updates WHERE rollout = ?", (b,))
    assert b1["n"] == 2
    signed = json.loads(
        store.db.query("SELECT payload FROM alert_outbox ORDER BY seq")[3]["payload"]
    )
    assert signed["update"]["rollout"] == b and signed["update"]["n"] == 2


def test_a_rollout_needs_the_fleet_key_and_never_makes_one(
    store_target: str | Path, tmp_path: Path
) -> None:
    store = Store(store_target, tmp_path / "snaps")
    register(store, "b1", "s1")
    rollouts = Rollouts(CloudConfig(data_dir=tmp_path))
    with pytest.raises(FileNotFoundError, match="no fleet key"):
        store.in_transaction(
            lambda c: rollouts.create(c, "config", PATCH, ["b1"], [100], time.time())
        )
    assert not (tmp_path / "fleet" / "signing.key").exists()
