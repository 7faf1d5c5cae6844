"""A NATS cluster on one machine: three nats-server nodes with JetStream and MQTT on free
ports, each with its own data directory, started, killed (SIGKILL) and restarted like servers;
for the demo, the tests and bench/province.py.

The config is the operator recipe's (``cloud.cluster``), so what runs here is what
docs/scaling.md tells an operator to run.
"""

from __future__ import annotations

import random
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.cluster import ClusterPlan, node_config


def mqtt_round_trip(port: int, timeout: float = 3, user: tuple[str, str] | None = None) -> bool:
    """Whether a QoS 1 message published to the node on ``port`` comes back to a QoS 1
    subscriber on the same node within ``timeout``."""
    got = threading.Event()
    topic = f"shian/probe/{uuid.uuid4().hex}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
    client.on_message = lambda _c, _u, _m: got.set()
    if user:
        client.username_pw_set(*user)
    try:
        client.connect("127.0.0.1", port, 10)
    except OSError:
        return False
    client.loop_start()
    try:
        deadline = time.monotonic() + timeout
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        result, _ = client.subscribe(topic, 1)
        if result != 0:
            return False
        client.publish(topic, b"probe", qos=1)
        return got.wait(max(0.1, deadline - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()


_taken: set[int] = set()


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range. Ports from that range (the usual
    "bind to 0") are soon some client's own end of a connection when many reconnect, and a
    killed node could not start again on its port."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    while True:
        port = rng.randrange(10_000, max(10_001, low))
        if port in _taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _taken.add(port)
        return port


def nats_binary() -> str | None:
    return shutil.which("nats-server") or (
        "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
    )


class NatsCluster:
    def __init__(
        self,
        workdir: Path,
        nodes: int = 3,
        auth_file: Path | None = None,
        probe_user: tuple[str, str] | None = None,
    ) -> None:
        binary = nats_binary()
        if binary is None:
            raise RuntimeError("nats-server is not installed (make system-deps)")
        self.binary, self.workdir = binary, workdir
        ports = [quiet_port() for _ in range(4 * nodes)]
        self.plan = ClusterPlan(
            host="127.0.0.1",
            client_ports=ports[0:nodes],
            cluster_ports=ports[nodes : 2 * nodes],
            mqtt_ports=ports[2 * nodes : 3 * nodes],
            http_ports=ports[3 * nodes : 4 * nodes],
            data_dir=workdir,
            auth_file=auth_file,
            route_password=secrets.token_urlsafe(16),
        )
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self.probe_user = probe_user

    @property
    def mqtt_urls(self) -> list[str]:
        return [f"mqtt://127.0.0.1:{p}" for p in self.plan.mqtt_ports]

    @property
    def nats_urls(self) -> list[str]:
        return [f"nats://127.0.0.1:{p}" for p in self.plan.client_ports]

    def start(self, timeout: float = 60) -> NatsCluster:
        """Start every node and wait until each carries MQTT; on failure none is left."""
        try:
            for i in range(len(self.procs)):
                self._spawn(i)
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, i: int) -> None:
        conf = self.workdir / f"n{i + 1}.conf"
        conf.write_text(node_config(self.plan, i))
        log = open(self.workdir / f"n{i + 1}.log", "ab")  # noqa: SIM115 - the server's for life
        self.procs[i] = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log)

    def wait_ready(self, timeout: float = 60, nodes: list[int] | None = None) -> float:
        """Until each node carries a QoS 1 message from one of its MQTT clients to another
        (its MQTT streams have leaders); returns the wait. Not ``/healthz``: after a SIGKILL
        it fails for a long while on the dead incarnation's own consumers, which MQTT needs
        no more."""
        began = time.monotonic()
        want = nodes if nodes is not None else [i for i, p in enumerate(self.procs) if p]
        pending = list(want)
        while pending:
            if time.monotonic() - began > timeout:
                logs = {i: (self.workdir / f"n{i + 1}.log").read_text()[-2000:] for i in want}
                raise TimeoutError(f"NATS cluster not ready in {timeout} s: {logs}")
            proc = self.procs[pending[0]]
            if proc is None or proc.poll() is not None:
                raise RuntimeError(f"NATS node {pending[0] + 1} exited")
            if mqtt_round_trip(self.plan.mqtt_ports[pending[0]], user=self.probe_user):
                pending.pop(0)
            else:
                time.sleep(0.1)
        return time.monotonic() - began

    def kill(self, i: int) -> None:
        """SIGKILL: no goodbye to its clients or its peers, as in a power cut."""
        proc = self.procs[i]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        self.procs[i] = None

    def restart(self, i: int, timeout: float = 60) -> float:
        """Start node ``i`` again on its own data; returns how long until it is current."""
        began = time.monotonic()
        self._spawn(i)
        self.wait_ready(timeout, [i])
        return time.monotonic() - began

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.procs[i] = None
