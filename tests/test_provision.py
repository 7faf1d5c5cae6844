"""Provisioning from a bundle: box profiles, camera templates, secrets apart, bad input."""

from __future__ import annotations

import json
import os
import pwd
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.provision import channels, provision


def bundle(tmp_path: Path, role: str = "kitchen") -> Path:
    b = {
        "v": 1,
        "device": "kitchen-17",
        "site": "canteen-017",
        "district": "xianan",
        "role": role,
        "mqtt": {
            "url": "mqtts://broker.example:8883",
            "username": "kitchen-17",
            "password": "pw-123",
            "ca_pem": "-----BEGIN CERTIFICATE-----\n",
        },
        "ticket_key": "ab" * 32,
        "ticket_base_url": "https://trace.example",
        "stall": {"market": "华信农贸市场", "stall_no": "A-07", "retailer": "李四"},
    }
    p = tmp_path / "b.json"
    p.write_text(json.dumps(b, ensure_ascii=False))
    return p


def test_cameras_from_a_template_and_a_box_profile(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main,
        [
            "provision",
            str(bundle(tmp_path)),
            "--dir",
            str(tmp_path / "etc"),
            "--data-dir",
            str(tmp_path / "var"),
            "--box",
            "pi5",
            "--camera-template",
            "hikvision",
            "--camera-host",
            "192.168.1.64",
            "--channels",
            "1-9",
        ],
    )
    assert r.exit_code == 0, r.output
    cfg = tomllib.loads((tmp_path / "etc" / "edge.toml").read_text())
    cams = cfg["kitchen"]["cameras"]
    assert [c["name"] for c in cams] == [f"cam{i}" for i in range(1, 10)]
    assert cams[2]["source"] == "rtsp://admin:@192.168.1.64:554/Streaming/Channels/302"
    assert cfg["kitchen"]["detector_threads"] == 4 and cams[0]["width"] == 640
    assert cfg["box"] == "pi5"
    from edge.config import EdgeConfig
    from edge.doctor import check_box

    (box,) = check_box(EdgeConfig.model_validate(cfg))
    assert box.ok and "9 camera(s), at most 9" in box.detail
    cfg["box"] = "pi4"
    (box,) = check_box(EdgeConfig.model_validate(cfg))
    assert not box.ok and "bigger box" in box.hint
    assert (tmp_path / "etc" / "mqtt_password").read_text().strip() == "pw-123"
    assert "pw-123" not in (tmp_path / "etc" / "edge.toml").read_text()


def test_a_box_refuses_more_cameras_than_it_can_watch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at most 6 cameras"):
        provision(
            bundle(tmp_path),
            tmp_path / "etc",
            tmp_path / "var",
            box="pi4",
            camera_template="dahua",
            camera_host="10.0.0.9",
            camera_channels="1-9",
        )
    with pytest.raises(ValueError, match="no box profile 'pi9'; known: cm4, pi4, pi5"):
        provision(bundle(tmp_path), tmp_path / "etc", tmp_path / "var", box="pi9")
    assert channels("1-3,7") == [1, 2, 3, 7]


def test_a_stall_gets_its_key_apart_and_its_site_data(tmp_path: Path) -> None:
    path = provision(
        bundle(tmp_path, "stall"),
        tmp_path / "etc",
        tmp_path / "var",
        scale_port="/dev/ttyUSB0",
        scale_profile="cas_ci",
        printer="network:10.0.0.5",
    ).path
    cfg = tomllib.loads(path.read_text())
    assert cfg["stall"]["market"] == "华信农贸市场" and cfg["stall"]["scale"]["profile"] == "cas_ci"
    key = tmp_path / "etc" / "ticket.key"
    assert key.read_text().strip() == "ab" * 32 and oct(key.stat().st_mode & 0o777) == "0o600"


def test_provisioning_again_keeps_the_hand_edited_config_and_shows_the_change(
    tmp_path: Path,
) -> None:
    b, etc = bundle(tmp_path), tmp_path / "etc"
    args = [str(b), "--dir", str(etc), "--data-dir", str(tmp_path / "var")]
    assert CliRunner().invoke(main, ["provision", *args]).exit_code == 0
    conf = etc / "edge.toml"
    conf.write_text(conf.read_text() + "# the installer's note\n")
    r = CliRunner().invoke(main, ["provision", *args])
    assert r.exit_code == 0, r.output
    (backup,) = etc.glob("edge.toml.*.bak")
    assert "# the installer's note" in backup.read_text()
    assert oct(backup.stat().st_mode & 0o777) == "0o600"
    assert "-# the installer's note" in r.output and str(backup) in r.output
    camera = ["--camera-template", "hikvision", "--camera-host", "10.0.0.9", "--channels", "1"]
    r = CliRunner().invoke(main, ["provision", *args, *camera, "--camera-password", "S3cret"])
    assert "+source" in r.output and "S3cret" not in r.output, "the diff hides the password"
    r = CliRunner().invoke(main, ["provision", *args, *camera, "--camera-password", "S3cret"])
    assert len(list(etc.glob("edge.toml.*.bak"))) == 2 and "changed" not in r.output


def test_provision_gives_the_files_to_the_service_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving files to another user needs root")
    nobody = pwd.getpwnam("nobody")
    etc, var = tmp_path / "etc", tmp_path / "var"
    provision(bundle(tmp_path, "stall"), etc, var, owner="nobody")
    for f in [etc / "edge.toml", etc / "mqtt_password", etc / "ticket.key", var]:
        assert f.stat().st_uid == nobody.pw_uid, f
    with pytest.raises(ValueError, match="no user 'no-such-user' here: create it first"):
        provision(bundle(tmp_path), etc, var, owner="no-such-user")


def test_not_a_bundle(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"v": 2}')
    r = CliRunner().invoke(main, ["provision", str(p), "--dir", str(tmp_path / "etc")])
    assert r.exit_code == 1 and "not a Shian bundle" in r.output


def test_a_cluster_bundle_spreads_the_boxes_and_gives_each_its_failover(tmp_path: Path) -> None:
    from cloud.provisioning import _nodes
    from edge.config import EdgeConfig
    from shared.config import load

    nodes = ["mqtts://n1:8883", "mqtts://n2:8883", "mqtts://n3:8883"]
    firsts = set()
    for i in range(30):
        got = _nodes(nodes[0], nodes[1:], f"kitchen-{i}")
        assert sorted([got["url"], *got["failover_urls"]]) == nodes, "every node once"
        firsts.add(got["url"])
    assert firsts == set(nodes), "the boxes start spread over the nodes"
    assert _nodes(nodes[0], [], "kitchen-1") == {"url": nodes[0]}
    b = json.loads(bundle(tmp_path).read_text())
    b["mqtt"].update(_nodes(nodes[0], nodes[1:], "kitchen-17"))
    (tmp_path / "b.json").write_text(json.dumps(b))
    out = provision(tmp_path / "b.json", tmp_path / "etc", tmp_path / "data")
    cfg = load(out.path, EdgeConfig)  # the box's config, validated as the agent loads it
    mine = [b["mqtt"]["url"], *b["mqtt"]["failover_urls"]]
    assert [cfg.mqtt.url, *cfg.mqtt.failover_urls] == mine
