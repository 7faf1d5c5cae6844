"""systemd: the units verify, and the agent pings the watchdog only while its workers live."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_main
from edge.agent import Agent
from edge.cli import main as edge_main
from tests.conftest import edge_config, wait_for
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def service_user() -> Iterator[str]:
    """A service user made by install-service itself (as root; else this user), removed after."""
    if os.geteuid() != 0:
        yield pwd.getpwuid(os.getuid()).pw_name
        return
    name = f"shian-t{os.getpid() % 100000}"
    yield name
    subprocess.run(["userdel", name], capture_output=True)


def test_install_service_makes_or_names_its_user(tmp_path: Path, service_user: str) -> None:
    args = ["install-service", "--dest", str(tmp_path), "--no-enable"]
    r = CliRunner().invoke(edge_main, [*args, "--user", "no-such-user", "--no-create-user"])
    assert r.exit_code == 1 and "no user 'no-such-user' on this machine: create it" in r.output
    assert "useradd --system" in r.output and not (tmp_path / "shian-edge.service").exists()
    r = CliRunner().invoke(edge_main, [*args, "--user", service_user])
    assert r.exit_code == 0, r.output
    user = pwd.getpwnam(service_user)
    if os.geteuid() == 0:
        assert f"user {service_user} created" in r.output and user.pw_shell == "/usr/sbin/nologin"
        assert "dialout" in [g.gr_name for g in grp.getgrall() if service_user in g.gr_mem]
    r = CliRunner().invoke(cloud_main, [*args, "--user", service_user])
    assert f"user {service_user} exists" in r.output


def test_units_pass_systemd_analyze_verify(tmp_path: Path, service_user: str) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing; `make test` installs systemd")
    r = CliRunner().invoke(
        edge_main,
        [
            "install-service",
            "--dest",
            str(tmp_path),
            "--no-enable",
            "--user",
            service_user,
            "--config",
            "/etc/shian/edge.toml",
        ],
    )
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        cloud_main,
        ["install-service", "--dest", str(tmp_path), "--no-enable", "--user", service_user],
    )
    assert r.exit_code == 0, r.output
    unit = (tmp_path / "shian-edge.service").read_text()
    for needed in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "StateDirectory=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "DeviceAllow=char-ttyUSB",
        "DeviceAllow=char-video4linux",
        "SupplementaryGroups=dialout video",
    ):
        assert needed in unit
    out = subprocess.run(
        [
            "systemd-analyze",
            "verify",
            str(tmp_path / "shian-edge.service"),
            str(tmp_path / "shian-cloud.service"),
            str(tmp_path / "shian-broker-reload.path"),
            str(tmp_path / "shian-broker-reload.service"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("unit", ["shian-edge.service", "shian-cloud.service"])
def test_units_are_rated_2_or_below_by_systemd_analyze_security(
    tmp_path: Path, unit: str, service_user: str
) -> None:
    """As install-service writes them; what still counts is the network they both need."""
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing; `make test` installs systemd")
    main = edge_main if unit.startswith("shian-edge") else cloud_main
    r = CliRunner().invoke(
        main, ["install-service", "--dest", str(tmp_path), "--no-enable", "--user", service_user]
    )
    assert r.exit_code == 0, r.output
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(tmp_path / unit)],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout)
    assert m is not None, out.stdout + out.stderr
    assert float(m.group(1)) <= 2.0, out.stdout
    text = (tmp_path / unit).read_text()
    for kept in ("UMask=0077", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service"):
        assert kept in text
    if unit == "shian-edge.service":  # still reaches its serial ports, cameras and printers
        for device in ("ttyUSB", "ttyACM", "ttyS", "ttyAMA", "usb", "video4linux"):
            assert f"DeviceAllow=char-{device} rw" in text
        assert "SupplementaryGroups=dialout video" in text
        assert "AF_INET AF_INET6" in text


class NotifySocket:
    """What systemd listens on: a Unix datagram socket collecting the agent's messages."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append((time.monotonic(), self.sock.recv(4096).decode()))
            except TimeoutError:
                continue
            except OSError:
                return  # closed

    def pings(self) -> list[float]:
        return [t for t, m in self.messages if m == "WATCHDOG=1"]

    def close(self) -> None:
        self._stop.set()
        self.sock.close()


def test_a_hung_worker_stops_the_watchdog_pings(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # WatchdogSec=1: a ping every 0.5 s
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    runner = threading.Thread(target=agent.run_forever, daemon=True)
    runner.start()
    try:
        wait_for(lambda: "READY=1" in [m for _, m in notify.messages], what="READY=1")
        wait_for(lambda: len(notify.pings()) >= 3, what="watchdog pings")
        hang = threading.Event()
        original = agent.outbox.pending

        def stuck(*a: object, **k: object) -> object:
            hang.wait()  # the sync loop blocks here, as on a hung disk or a deadlock
            return original(*a, **k)

        monkeypatch.setattr(agent.outbox, "pending", stuck)
        agent.emit("test", {"note": "wake the sync loop into the trap"})
        wait_for(
            lambda: notify.pings() and time.monotonic() - notify.pings()[-1] > 6,
            timeout=20,
            what="the pings to stop",
        )
        count = len(notify.pings())
        hang.set()  # unstuck: pings resume
        wait_for(lambda: len(notify.pings()) > count, what="pings again")
    finally:
        agent.request_stop()
        runner.join(15)
        notify.close()
    assert "STOPPING=1" in [m for _, m in notify.messages]
