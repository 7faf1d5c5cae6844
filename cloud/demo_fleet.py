"""The demo's over-the-air updates: the operator pushes a new rule to the kitchen's box and
it is applied; then a config the box cannot run on, and the box rolls it back by itself.

The demo's boxes are started again whenever they exit, as systemd's ``Restart=always`` does
on a real box (that is how an update is applied, and how a failed one is rolled back).
"""

from __future__ import annotations

import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

import tomli_w

from cloud.demo_setup import KITCHEN, has_kitchen_data

if TYPE_CHECKING:
    from cloud.demo import Demo
    from cloud.store import Store

HEALTH_S = 5
"""How long the box must stay healthy on an update in the demo (a real fleet: minutes)."""


class Keeper:
    """Starts a box again when it exits, unless it is held (a power cut)."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.kept: set[str] = set()
        self.exits: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-keeper", daemon=True)

    def keep(self, device: str) -> None:
        self.kept.add(device)
        if not self._thread.is_alive():
            self._thread.start()

    def hold(self, device: str) -> None:
        self.kept.discard(device)

    def stop(self) -> None:
        self.kept.clear()
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for device in list(self.kept):
                proc = self.demo.procs.get(device)
                if proc is not None and proc.poll() is not None and device in self.kept:
                    self.exits.setdefault(device, []).append(int(proc.returncode))
                    self.demo.procs[device] = self.demo.cli(
                        "edge.cli", "run", "--config", str(self.demo.w / f"{device}.toml")
                    )


def _state(store: Store, update_n: int) -> dict[str, Any] | None:
    rows = store.db.query(
        "SELECT state, detail FROM fleet_updates WHERE device = ? AND n = ?", (KITCHEN, update_n)
    )
    return rows[0] if rows and rows[0]["state"] != "sent" else None


def story(demo: Demo, store: Store, say: Any, wait: Any) -> bool:
    """Push a good update and a broken one to the kitchen's box; True if both ended as they
    should (applied, then rolled back by the box)."""
    conf = str(demo.w / "cloud.toml")
    if has_kitchen_data():
        what = "a new rule: a person in the kitchen after hours"
        good: dict[str, Any] = {
            "kitchen": {
                "rules": [
                    {"violation": "animal_in_kitchen", "labels": ["Cat", "Dog"],
                     "min_score": 0.5, "cooldown_s": 600},
                    {"violation": "person_after_hours", "labels": ["Person"],
                     "active": [{"start": "21:00", "end": "05:00"}]},
                ]
            }
        }  # fmt: skip
    else:
        what = "a heartbeat every 4 s (no kitchen here without the test photos)"
        good = {"sync": {"heartbeat_s": 4}}
    broken = {"mqtt": {"url": "mqtt://127.0.0.1:1"}}  # valid, but no broker there
    results = []
    for n, (patch, told) in enumerate(
        [(good, what), (broken, "a config pointing it at a broker that does not exist")], 1
    ):
        path = demo.w / f"fleet-update-{n}.toml"
        path.write_text(tomli_w.dumps(patch))
        try:
            out = demo.run_cli(
                "cloud.cli", "fleet", "push", "--config-patch", str(path), "--device", KITCHEN,
                "--health-s", str(HEALTH_S), "--config", conf,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            say(f"fleet: the push failed: {exc.stderr}")
            return False
        say(f"fleet: operator pushes {told} to {KITCHEN} ({out.split(':')[0]}, signed)")
        t0 = time.monotonic()
        row = wait(lambda n=n: _state(store, n), 90, f"the box's answer to update {n}")
        say(
            f"  {KITCHEN}: {row['state']} after {time.monotonic() - t0:.0f} s"
            f" ({row['detail'] or 'no detail'})"
        )
        results.append(row["state"])
    say(f"  {KITCHEN} exits seen by its service manager: {demo.keeper.exits.get(KITCHEN, [])}"
        " (75: restart to apply an update; 1: not healthy on it)")  # fmt: skip
    return results == ["applied", "rolled_back"]
