"""A real Mosquitto broker on a free port with its own config, for tests and benchmarks."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
        None,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """Poll until something accepts TCP connections on ``port`` (synchronisation, not a sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


class Mosquitto:
    """``start``/``stop``/``restart`` a broker; persistence stays off unless asked for."""

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra: str = "",
        listener: str = "",
        anonymous: bool = True,
        user: str = "",
    ) -> None:
        """``user``: the user Mosquitto drops to when started as root (as its Debian service
        does, ``mosquitto``); by default it stays root, to read the test's private files."""
        exe = find_mosquitto()
        if exe is None:
            raise RuntimeError("mosquitto not installed (make test installs it)")
        self.exe = exe
        self.workdir = workdir
        self.port = port or free_port()
        self.extra = extra
        self.listener = listener
        self.anonymous = anonymous
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def write_conf(self) -> None:
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"{self.listener}\n"
            f"allow_anonymous {'true' if self.anonymous else 'false'}\n"
            "persistence false\n"
            "max_queued_messages 0\n"  # no cap: a test collector may be away for a while
            "max_inflight_messages 100\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            # As root, Mosquitto drops to user "mosquitto", which cannot read the test's
            # private temp files (password file, certificates, log); stay who we are.
            + (f"user {self.user or 'root'}\n" if os.geteuid() == 0 else "")
            + f"{self.extra}\n"
        )

    def start(self) -> Mosquitto:
        self.write_conf()
        self.proc = subprocess.Popen(
            [self.exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_listening(self.port, self.proc)
        except RuntimeError:
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise RuntimeError(f"mosquitto did not start: {err}") from None
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(15)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
