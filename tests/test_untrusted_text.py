"""Text that crosses a boundary: credentials never leave a URL for a log, an event, an alert
or a bot; what a box wrote is escaped for the bot's markdown; names are checked where they are
stored; secret files are never readable by others, not even for a moment."""

from __future__ import annotations

import logging
import os
import re
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cloud.alerts.webhooks import line, md
from cloud.broker_files import acl_text, check_password, hash_password
from cloud.config import EmbeddedBroker
from cloud.registry import Identity, RegistryError
from shared.redact import redact
from shared.secretfiles import write_secret
from shared.topics import check_name


@pytest.mark.parametrize(
    "text",
    [
        "rtsp://admin:Pa55@192.168.1.64:554/Streaming/Channels/102",
        "cannot open rtsp://admin:p@ss@cam.local/x",
        "http://cam/cgi-bin/snapshot.cgi?user=admin&password=Pa55&channel=1",
        "mqtts://kitchen-1:Pa55@broker.example:8883",
        "FFmpeg: Server returned 401 for RTSP://ADMIN:Pa55@10.0.0.9/live",
        "rtmp://h/live?token=Pa55&x=1",
    ],
)
def test_credentials_are_stripped(text: str) -> None:
    out = redact(text)
    assert "Pa55" not in out and "p@ss" not in out and "***" in out


@given(st.text(max_size=40), st.text(alphabet="abcdefghijklmnop0123456789!$", min_size=1))
def test_a_password_in_any_url_never_survives(prefix: str, password: str) -> None:
    text = f"{prefix} rtsp://admin:{password}@10.0.0.1:554/ch1"
    assert f":{password}@" not in redact(text)


def test_a_camera_with_a_password_goes_offline_without_it(caplog: Any) -> None:
    from edge.vision.cameras import Camera

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    states: list[tuple[str, str, dict[str, Any]]] = []
    cam = Camera(
        "cam1",
        f"rtsp://admin:Pa55word@127.0.0.1:{port}/Streaming/Channels/102",
        (320, 240),
        5,
        stall_timeout_s=0.1,
        on_state=lambda *a: states.append(a),
    )
    with caplog.at_level(logging.DEBUG):
        cam.start()
        deadline = time.monotonic() + 20
        while not states and time.monotonic() < deadline:
            cam.check(time.monotonic())
            time.sleep(0.05)  # the watchdog's own pace, as the kitchen loop calls it
        cam.stop()
    assert states and states[0][1] == "offline"
    assert "Pa55word" not in repr(states) and "Pa55word" not in caplog.text
    assert "rtsp://***@127.0.0.1" in states[0][2]["reason"]


MARKUP = re.compile(r"[*_`\[\]()<>#!|~@\\\n]")


@given(st.text(max_size=200))
def test_box_text_in_a_bot_message_makes_no_markup(text: str) -> None:
    out = md(text)
    assert not MARKUP.search(out) and "://" not in out


def test_an_alert_line_carries_only_its_own_link() -> None:
    msg = {
        "severity": "critical",
        "type": "animal_in_kitchen",
        "site": "s1",
        "district": "xianan",
        "state": "open",
        "count": 1,
        "title": "animal_in_kitchen on cam1 ([click](http://evil.example) @all **x**)",
        "due": None,
        "snapshot_url": "http://collector.example/snap/01a2163b-7bee-7102-8423-f30d289971eb.jpg",
    }
    text = line(msg)
    assert "](http://evil" not in text and "@all" not in text and "**x**" not in text
    assert text.count("](") == 1 and "animal_in_kitchen" in text
    assert "[evidence]" not in line({**msg, "snapshot_url": "javascript:alert(1)"})


names = st.text(max_size=70)


@given(names)
def test_a_name_is_one_topic_level_or_refused(name: str) -> None:
    try:
        check_name(name, "district")
    except ValueError:
        assert not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name)
        with pytest.raises(RegistryError):
            Identity(name="wang", kind="supervisor", district=name).check()
        return
    acl = acl_text("c", [], [Identity(name="wang", kind="supervisor", district=name)])
    assert f"topic read shian/v1/alerts/{name}/+\n" in acl
    assert all(line.split(" ")[0] in ("", "#", "user", "topic") for line in acl.splitlines())


def test_the_registry_refuses_what_would_change_an_acl_or_a_page() -> None:
    for bad in (
        Identity(name="k1", kind="device", role="kitchen", site="s1", district="+"),
        Identity(name="k1\n", kind="device", role="kitchen", site="s1", district="d"),
        Identity(name="k1", kind="device", role="admin", site="s1", district="d"),
        Identity(name="k1", kind="device", role="stall", site="s/1", district="d"),
        Identity(name="k1", kind="device", role="stall", site="s", district="d", market="a\nb"),
        Identity(name="k1", kind="device", role="stall", site="s", district="d", key_id="../x"),
        Identity(name="#", kind="supervisor", district="d"),
    ):
        with pytest.raises(RegistryError):
            bad.check()


def test_a_password_hash_as_mosquitto_writes_it() -> None:
    hashed = hash_password("secret", salt=b"0123456789ab")
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", hashed)
    assert check_password("secret", hashed) and not check_password("Secret", hashed)


def test_secret_files_are_never_readable_by_others(tmp_path: Path) -> None:
    old = os.umask(0)  # the most careless umask a process could have
    try:
        path = write_secret(tmp_path / "k" / "bundle.json", "{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.chmod(0o644)  # an old file, once readable: written again, it is not
        write_secret(path, "{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(write_secret(tmp_path / "acl", "x", 0o640).stat().st_mode) == 0o640
        assert not list(tmp_path.rglob("*.tmp")), "no temporary copy left behind"
    finally:
        os.umask(old)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.2", "broker.example"])
def test_the_embedded_broker_listens_on_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="this machine only"):
        EmbeddedBroker(host=host)
    for ok in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        assert EmbeddedBroker(host=ok).host == ok


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
@example("k1,s1,d1,kitchen\nst1,m1,d1,stall\n")
@example("k1,s1,d1,kitchen\nk+,s1,d1,kitchen\n")
def test_any_devices_csv_registers_or_is_refused_clearly(tmp_path_factory: Any, text: str) -> None:
    """An operator's CSV is outside data too: every row checked before any is written."""
    from click.testing import CliRunner

    from cloud.cli import main as cloud_main

    work = tmp_path_factory.mktemp("csv")
    conf = work / "cloud.toml"
    conf.write_text(
        f'[store]\npath = "{work / "c.db"}"\n[provisioning]\nbroker_dir = "{work / "b"}"\n'
        f'bundle_dir = "{work / "bundles"}"\n[tickets]\nkeys_dir = "{work / "k"}"\n'
    )
    csv = work / "boxes.csv"
    csv.write_text("device,site,district,role\n" + text, encoding="utf-8", errors="replace")
    r = CliRunner().invoke(cloud_main, ["devices", "import", str(csv), "--config", str(conf)])
    assert r.exit_code in (0, 1), r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    if r.exit_code == 1:
        assert r.output.startswith("Error: ") and not list((work / "bundles").glob("*.json"))
    elif text.startswith("k1,s1,d1,kitchen"):
        assert (work / "bundles" / "k1.json").exists() and "registered" in r.output


@given(names, names)
def test_a_name_is_one_subject_level_on_the_cluster_or_left_off(name: str, district: str) -> None:
    """cloud.broker_nats: a name the registry takes is one NATS subject level in its user's
    grants, or (holding a '.', which NATS reads as two levels) the user is left off."""
    from cloud.broker_nats import users_text

    try:
        check_name(name, "device")
        check_name(district, "district")
    except ValueError:
        return  # the registry refuses it (the test above)
    box = Identity(name=name, kind="device", role="kitchen", site="s1", district=district)
    sup = Identity(name="wang", kind="supervisor", district=district)
    text = users_text("c", [box], [sup], {name: "$2b$06$h", "wang": "$2b$06$h", "c": "$2b$06$h"})
    granted = re.findall(r'"(shian\.[^"]*)"', text)
    if "." in name:
        assert f'user: "{name}"' not in text
    else:
        assert f'user: "{name}"' in text
        assert f"shian.v1.dev.{name}.events" in granted
    if "." in district:
        assert 'user: "wang"' not in text
    for subject in granted:  # every grant is the fixed shape with its names as single levels
        assert re.fullmatch(
            r"shian\.v1\.(dev|alerts|escalations|sup|collector)(\.[^.\s\"]+)+", subject
        )
        assert ">" not in subject[:-1] and "*" not in subject.replace(".*", "")
