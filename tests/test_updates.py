"""Updates as the box checks them (signature, address, shape; fuzzed), the config the cloud
pushes laid over the installer's, and a trial applied then rolled back at start."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import tomli_w
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.updates.launch import prepare
from edge.updates.overlay import load_edge, merge, patched
from edge.updates.state import UpdateState
from shared.updates import Update, UpdateRefused, public_key, sign, verify
from tests.conftest import wait_for

KEY = Ed25519PrivateKey.generate()
PUBLIC = public_key(base64.b64encode(KEY.public_key().public_bytes_raw()).decode())


def update(**over: object) -> Update:
    base: dict[str, object] = {
        "id": "a" * 32,
        "rollout": "b" * 32,
        "device": "k1",
        "n": 1,
        "kind": "config",
        "created": 0,
        "health_s": 30,
        "files_url": "http://cloud/fleet/files",
        "config": {"sync": {"heartbeat_s": 3}},
    }
    return Update.model_validate({**base, **over})


def test_a_signed_update_for_this_box_is_taken() -> None:
    assert verify(PUBLIC, sign(KEY, update()), "k1") == update()


def test_every_change_to_a_signed_update_breaks_its_signature() -> None:
    doc = json.loads(sign(KEY, update()))
    for field, value in [("n", 99), ("device", "k2"), ("config", {"mqtt": {"url": "x"}})]:
        changed = json.loads(json.dumps(doc))
        changed["update"][field] = value
        with pytest.raises(UpdateRefused, match="bad signature"):
            verify(PUBLIC, json.dumps(changed).encode(), "k1")
    with pytest.raises(UpdateRefused, match="not to this box"):
        verify(PUBLIC, sign(KEY, update()), "k2")
    with pytest.raises(UpdateRefused, match="bad signature"):
        verify(PUBLIC, sign(Ed25519PrivateKey.generate(), update()), "k1")


def test_an_update_carries_exactly_its_kind() -> None:
    with pytest.raises(ValueError, match="exactly its own part"):
        update(kind="software")
    with pytest.raises(ValueError, match="not a valid name"):
        update(device="k1/../k2")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_are_refused_cleanly(payload: bytes) -> None:
    with pytest.raises(UpdateRefused):
        verify(PUBLIC, payload, "k1")


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=20,
    )
)
def test_any_json_in_place_of_the_update_is_refused_cleanly(value: object) -> None:
    payload = json.dumps({"update": value, "sig": "AAAA"}).encode()
    with pytest.raises(UpdateRefused):
        verify(PUBLIC, payload, "k1")


def box(tmp_path: Path) -> Path:
    conf = tmp_path / "edge.toml"
    raw = {"device": "k1", "site": "s1", "data_dir": str(tmp_path / "var")}
    conf.write_text(tomli_w.dumps({**raw, "sync": {"heartbeat_s": 30}}))
    return conf


def test_a_pushed_config_is_laid_over_the_installers(tmp_path: Path) -> None:
    conf = box(tmp_path)
    state = UpdateState(tmp_path / "var")
    state.set_overlay(patched(conf, None, {"sync": {"batch_max_events": 50}}))
    state.set_overlay(patched(conf, state.overlay_text(), {"sync": {"heartbeat_s": 5}}))
    cfg = load_edge(conf)
    assert (cfg.sync.heartbeat_s, cfg.sync.batch_max_events) == (5, 50)
    assert merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}
    with pytest.raises(ValueError, match="may not change device"):
        patched(conf, None, {"device": "k2"})
    with pytest.raises(ValueError, match="heartbeat_s"):
        patched(conf, None, {"sync": {"heartbeat_s": -1}})
    with pytest.raises(ValueError, match="unknown key"):
        patched(conf, None, {"sync": {"nonsense": 1}})


def test_a_staged_update_is_put_on_trial_and_rolled_back_if_the_agent_stops(
    tmp_path: Path,
) -> None:
    state = UpdateState(tmp_path)
    state.set_overlay("[sync]\nheartbeat_s = 3\n")
    doc = update().model_dump(mode="json")
    state.set_staged({"update": doc, "overlay": "[sync]\nheartbeat_s = 9\n", "release": "0.2"})
    assert prepare(tmp_path) == "applied"
    assert state.overlay_text() == "[sync]\nheartbeat_s = 9\n" and state.release() == "0.2"
    assert state.staged() is None and state.trial() is not None
    # the agent on it stopped before it was healthy: the next start puts everything back
    assert prepare(tmp_path) == "rolled back"
    assert state.overlay_text() == "[sync]\nheartbeat_s = 3\n" and state.release() is None
    (report,) = state.reports()
    assert report["outcome"] == "rolled_back" and report["update"] == "a" * 32
    assert prepare(tmp_path) == "", "nothing more to do"


def test_an_update_that_comes_during_a_trial_waits_for_its_end(tmp_path: Path) -> None:
    """Staging it would restart the agent and so roll the trial back."""
    from edge.config import EdgeConfig
    from edge.store.outbox import Outbox
    from edge.updates.receive import Updater

    conf = box(tmp_path)
    cfg = EdgeConfig.model_validate(
        {
            "device": "k1",
            "site": "s1",
            "data_dir": str(tmp_path / "var"),
            "fleet": {"public_key": base64.b64encode(KEY.public_key().public_bytes_raw()).decode()},
        }
    )
    state = UpdateState(cfg.data_dir)
    state.set_trial({"update": update().model_dump(mode="json"), "previous": {}})
    restarts: list[int] = []
    outbox = Outbox(cfg.outbox_path, "k1", "s1")
    updater = Updater(cfg, conf, outbox, lambda: restarts.append(1))
    updater.start()
    try:
        updater.on_command("update", sign(KEY, update(id="c" * 32, n=2)))
        assert not updater.settled.wait(1.0) and state.staged() is None and not restarts
        updater.settled.set()  # the trial's update applied for good
        wait_for(lambda: restarts, what="the update staged once the trial ended")
        assert state.staged() is not None
        assert state.staged()["update"]["id"] == "c" * 32
    finally:
        updater.stop()
        outbox.close()


def test_a_committed_trial_is_reported_applied_and_a_stale_stage_is_dropped(
    tmp_path: Path,
) -> None:
    state = UpdateState(tmp_path)
    doc = update().model_dump(mode="json")
    # healthy, then the disk refused its report: the next start sends it, rolls nothing back
    state.set_trial({"update": doc, "previous": {"overlay": None, "release": None},
                     "committed": True})  # fmt: skip
    state.set_overlay("[sync]\nheartbeat_s = 9\n")
    assert prepare(tmp_path) == ""
    assert state.overlay_text() == "[sync]\nheartbeat_s = 9\n" and state.trial() is None
    assert [r["outcome"] for r in state.reports()] == ["applied"]
    # a power cut inside a start, after the trial was written but before the stage was
    # cleared: the rollback drops that stage too, so it is not applied a second time
    state.set_staged({"update": doc, "overlay": "[sync]\nheartbeat_s = 3\n"})
    state.set_trial({"update": doc, "previous": {"overlay": None, "release": None}})
    assert prepare(tmp_path) == "rolled back"
    assert state.staged() is None and prepare(tmp_path) == ""
