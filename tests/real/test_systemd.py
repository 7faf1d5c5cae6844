"""systemd: the units verify, and the agent pings the watchdog only while its workers live."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.agent import Agent
from edge.cli import main as edge_main
from edge.systemd import render_unit
from tests.conftest import edge_config, wait_for
from tests.support.mosquitto import Mosquitto

pytestmark = pytest.mark.real


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing; `make test` installs systemd")
    r = CliRunner().invoke(
        edge_main,
        [
            "install-service",
            "--dest",
            str(tmp_path),
            "--no-enable",
            "--config",
            "/etc/shian/edge.toml",
        ],
    )
    assert r.exit_code == 0, r.output
    exe = str(Path(sys.executable).parent / "shian-cloud")
    (tmp_path / "shian-cloud.service").write_text(
        render_unit("shian-cloud.service", exe, "/etc/shian/cloud.toml")
    )
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
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


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
