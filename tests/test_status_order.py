"""A box's statuses, taken in any order (several collectors, late wills, queues), leave the cloud
with the last one the box wrote, whatever its clock said: a property test over random histories
of agent runs, MQTT sessions and heartbeats, delivered shuffled, stamped with random clocks."""

from __future__ import annotations

import json
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.collector import Incoming, classify
from cloud.store import Store
from tests.conftest import register

NOW = 1_795_662_000.0


def history(runs: list[list[int]]) -> list[dict[str, Any]]:
    """The statuses a box wrote, in the order it wrote them: for each run, for each session,
    its will (made at the start), then its heartbeats; the last session of the last run ends
    with a clean stop. ``last_seq`` grows with each run (device_started)."""
    out: list[dict[str, Any]] = []
    for r, sessions in enumerate(runs):
        run, n, seq = f"{r:032x}", 0, r + 1
        for s, beats in enumerate(sessions, 1):
            n += 1
            will = {"state": "offline", "reason": "will", "run": run, "sess": s, "n": n}
            out.append({**will, "last_seq": seq, "will": True})
            for _ in range(beats):
                n += 1
                out.append({"state": "online", "run": run, "sess": s, "n": n, "last_seq": seq})
    last = {k: v for k, v in out[-1].items() if k != "will"}
    out.append({**last, "state": "offline", "reason": "stop", "n": last["n"] + 1})
    return out


def payload(st_: dict[str, Any], clock: random.Random) -> bytes:
    ts = datetime.fromtimestamp(NOW + clock.uniform(-86400, 86400), UTC).isoformat()
    body = {k: v for k, v in st_.items() if k != "will"}
    return json.dumps({"v": 1, "device": "b1", "site": "s1", "ts": ts, **body}).encode()


@settings(max_examples=40, deadline=None)
@given(
    runs=st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=3), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_last_status_written_wins_in_any_delivery_order(
    runs: list[list[int]], seed: int
) -> None:
    rng = random.Random(seed)
    written = history(runs)
    # the broker sends a will only when a session is lost; here every session's will arrives
    # (the worst case: late, after what replaced it), except the clean stop's session
    delivered = [
        x
        for x in written
        if not (
            x.get("will") and x["run"] == written[-1]["run"] and x["sess"] == written[-1]["sess"]
        )
    ]
    rng.shuffle(delivered)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "c.db")
        register(store, "b1", "s1")
        for i, x in enumerate(delivered):
            msg = Incoming(None, 1, 1, "shian/v1/dev/b1/status", payload(x, rng))
            store.write(*classify([msg]), received=NOW + i)
        (dev,) = store.devices.list()
        last = dev["last_status"]
        store.close()
    assert (last["run"], last["sess"], last["n"]) == (
        written[-1]["run"],
        written[-1]["sess"],
        written[-1]["n"],
    )
    assert dev["state"] == "offline" and dev["state_reason"] == "stop"


def _send(store: Store, at: float, **fields: Any) -> None:
    body = {"v": 1, "device": "b1", "site": "s1", "ts": datetime.fromtimestamp(at, UTC).isoformat()}
    msg = Incoming(None, 1, 1, "shian/v1/dev/b1/status", json.dumps({**body, **fields}).encode())
    store.write(*classify([msg]), received=at)


def _state(store: Store) -> tuple[str, str, str]:
    (dev,) = store.devices.list()
    return dev["state"], dev["state_reason"], dev["last_status"]["run"]


def test_runs_with_the_same_sequence_and_a_late_will(tmp_path: Path) -> None:
    """A full disk refused device_started, so two runs share last_seq: the old run's late will
    does not take the box offline, and the live run's statuses go on being applied."""
    store = Store(tmp_path / "c.db")
    register(store, "b1", "s1")
    a, b = "a" * 32, "b" * 32
    _send(store, NOW, state="online", run=a, sess=1, n=2, last_seq=7)
    _send(store, NOW + 5, state="online", run=b, sess=1, n=2, last_seq=7)
    _send(store, NOW + 6, state="offline", reason="will", run=a, sess=1, n=1, last_seq=7)
    assert _state(store) == ("online", "", b)
    _send(store, NOW + 30, state="online", run=b, sess=1, n=3, last_seq=7)
    assert _state(store) == ("online", "", b) and store.devices.list()[0]["last_status"]["n"] == 3
    _send(store, NOW + 40, state="offline", reason="stop", run=b, sess=1, n=4, last_seq=7)
    assert _state(store) == ("offline", "stop", b)


def test_a_box_whose_database_was_wiped_is_believed_once_the_old_status_is_stale(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "c.db")
    register(store, "b1", "s1")
    old, new = "a" * 32, "c" * 32
    _send(store, NOW, state="offline", reason="stop", run=old, sess=3, n=90, last_seq=5000)
    _send(store, NOW + 60, state="online", run=new, sess=1, n=2, last_seq=1)
    assert _state(store) == ("offline", "stop", old), "a minute later: a late message, maybe"
    _send(store, NOW + 3600, state="online", run=new, sess=1, n=3, last_seq=2)
    assert _state(store) == ("online", "", new), "an hour later: the box starts again from 1"
    _send(store, NOW + 3601, state="offline", reason="will", run=old, sess=3, n=1, last_seq=4990)
    assert _state(store) == ("online", "", new), "the old run is replaced for good"
