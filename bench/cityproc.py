"""The processes bench/city.py drives: the collector (CPU and memory read from /proc), the
box simulator (bench/citysim.py, spoken to on stdin/stdout) and a supervisor's subscriber."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


class CollectorProcess:
    """``shian-cloud run`` as deployed; its RSS sampled every 0.2 s, CPU from /proc."""

    def __init__(self, conf: Path, log: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cloud.cli", "run", "--config", str(conf)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.peak_kb = 0
        self._mark = (time.monotonic(), self._cpu_s())
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def _status_kb(self, field: str) -> int:
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return 0
        line = next((x for x in text.splitlines() if x.startswith(field)), f"{field} 0 kB")
        return int(line.split()[1])

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, self._status_kb("VmRSS:"), self._status_kb("VmHWM:"))

    def _cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

    def cpu_mark(self) -> None:
        self._mark = (time.monotonic(), self._cpu_s())

    def cpu_cores(self) -> float:
        """CPU used since the mark, in cores (1.0 = one core busy all the time)."""
        wall, cpu = self._mark
        return round((self._cpu_s() - cpu) / max(1e-9, time.monotonic() - wall), 3)

    def peak_rss_mb(self) -> float:
        self.peak_kb = max(self.peak_kb, self._status_kb("VmHWM:"))
        return round(self.peak_kb / 1024, 1)

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used, from /proc; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


class Simulator:
    """bench/citysim.py in a process of its own (so that a power cut can be a SIGKILL).
    ``extra``: more citysim arguments (``--brokers``, ``--first``, ``--sub-qos``, ...)."""

    def __init__(self, port: int, boxes: int, log: Path, extra: list[str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "bench" / "citysim.py"),
                "--port",
                str(port),
                "--boxes",
                str(boxes),
                *(extra or []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("ab"),
            text=True,
        )
        self._lock = threading.Lock()

    def command(self, line: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"simulator gone (exit {self.proc.poll()}); see sim.log")
        result: dict[str, Any] = json.loads(answer)
        return result

    def stats(self) -> dict[str, Any]:
        return self.command("stats")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)


class Supervisor:
    """Subscribes to every district's alerts, as the supervisors' phones do together."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._since = 0.0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-supervisor")
        self.client.on_connect = lambda c, *_: c.subscribe("shian/v1/alerts/#", qos=1)
        self.client.on_message = lambda _c, _u, m: self.messages.append(
            (time.time(), json.loads(m.payload))
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def mark(self) -> None:
        self._since = time.time()

    def _recent(self) -> list[dict[str, Any]]:
        return [m for t, m in list(self.messages) if t >= self._since]

    def messages_per_district(self, types: tuple[str, ...]) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in self._recent():
            if m["type"] in types:
                out[m["district"]] = out.get(m["district"], 0) + 1
        return out

    def boxes_in_incidents(self) -> int:
        latest: dict[str, dict[str, Any]] = {}
        for m in self._recent():
            if m["type"] == "district_outage":
                latest[m["id"]] = m
        return sum(1 for m in latest.values() for b in m["boxes"] if b["back"] is None)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
