"""A box's agent as systemd runs it: ``shian-edge run`` as a real process, started again
whenever it exits (``Restart=always``), which is how an update gets applied (the agent exits
75) and how a failed one gets rolled back (the next start does it). There is no systemd in
the test machine; this loop does only that part of its job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path


class Service:
    def __init__(self, config: Path, log: Path) -> None:
        self.argv = [
            str(Path(sys.executable).parent / "shian-edge"),
            "run",
            "--config",
            str(config),
        ]
        self.log = log
        self.exits: list[int] = []
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> Service:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        while not self._stop.is_set():
            with self._lock, self.log.open("ab") as fh:
                if self._stop.is_set():
                    return
                self._proc = subprocess.Popen(
                    self.argv, stdout=fh, stderr=fh, env=env, cwd=self.log.parent
                )
                self.starts += 1
            code = self._proc.wait()
            self.exits.append(code)
            self._stop.wait(0.2)  # RestartSec

    def stop(self) -> None:
        """Stop the service (SIGTERM, as systemctl stop), and do not start it again."""
        self._stop.set()
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.send_signal(signal.SIGTERM)
                self._proc.wait(30)
        if self._thread is not None:
            self._thread.join(5)
