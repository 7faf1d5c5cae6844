"""``shian-cloud demo``: the whole system on one machine, as a newcomer should first see it.

A collector with its embedded broker, a kitchen box and a stall box (real ``shian-edge run``
processes with their own outboxes) making sample events. Midway the kitchen box is killed
with SIGKILL, events are queued while it is down, and it is restarted; a malformed message is
published. At the end every event made on a box must be in the cloud exactly once; the demo
exits non-zero otherwise. It talks to the boxes only through their command line, as an
operator would.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from cloud.store import Store
from shared.config import MqttSettings
from shared.mqtt import make_client, protocols

BOXES = {"kitchen-1": ("canteen-001", 0.5), "stall-7": ("market-huaxin-07", 1.0)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on port {port}")


def _write_configs(workdir: Path, port: int) -> None:
    (workdir / "cloud.toml").write_text(
        f'[embedded_broker]\nport = {port}\n\n[store]\npath = "{workdir / "cloud.db"}"\n'
    )
    for device, (site, every) in BOXES.items():
        (workdir / f"{device}.toml").write_text(
            f'device = "{device}"\nsite = "{site}"\ndata_dir = "{workdir / device}"\n\n'
            f'[mqtt]\nurl = "mqtt://127.0.0.1:{port}"\nbackoff_max_s = 2\n'
            '# the embedded broker speaks MQTT 3.1.1 only; "auto" would find that out in 3 s\n'
            'protocol = "3.1.1"\n\n'
            f"[sync]\nheartbeat_s = 5\n\n[demo]\nsample_every_s = {every}\n"
        )


def _cli(module: str, *args: str, **kw: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module, *args], **kw)


def _edge(workdir: Path, device: str, log: Any) -> subprocess.Popen[bytes]:
    return _cli(
        "edge.cli", "run", "--config", str(workdir / f"{device}.toml"), stdout=log, stderr=log
    )


def _outbox(workdir: Path, device: str) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "outbox",
            "status",
            "--json",
            "--limit",
            "1",
            "--config",
            str(workdir / f"{device}.toml"),
        ],
        capture_output=True,
        check=True,
    )
    stats: dict[str, Any] = json.loads(out.stdout)["outbox"]
    return stats


def _say(text: str) -> None:
    click.echo(click.style(time.strftime("%H:%M:%S "), dim=True) + text)


def _progress(store: Store, workdir: Path, shown: set[str]) -> None:
    for e in reversed(store.events(limit=200)):
        if e["id"] not in shown:
            shown.add(e["id"])
            if len(shown) % 5 == 1 or e["kind"] != "test":
                _say(
                    f"  cloud <- {e['device']:<10} #{e['seq']:<4} {e['kind']:<15} "
                    f"{json.dumps(e['data'], ensure_ascii=False)}"
                )


def run_demo(workdir: Path, seconds: float) -> int:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    port = _free_port()
    _write_configs(workdir, port)
    log = (workdir / "processes.log").open("ab")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    _say(f"collector with embedded MQTT broker on 127.0.0.1:{port} (logs: {workdir}/processes.log)")
    procs["cloud"] = _cli(
        "cloud.cli", "run", "--config", str(workdir / "cloud.toml"), stdout=log, stderr=log
    )
    try:
        _wait_port(port)
        for device in BOXES:
            _say(f"edge box {device} started (site {BOXES[device][0]})")
            procs[device] = _edge(workdir, device, log)
        _wait_file(workdir / "cloud.db")
        store = Store(workdir / "cloud.db")
        shown: set[str] = set()
        start = time.monotonic()
        stage = 0
        while seconds <= 0 or time.monotonic() - start < seconds:
            time.sleep(1.0)
            _progress(store, workdir, shown)
            t = time.monotonic() - start
            if stage == 0 and t > max(3.0, seconds * 0.3):
                stage = 1
                _say("power cut at kitchen-1: SIGKILL, then 5 events queued while it is down")
                procs["kitchen-1"].send_signal(signal.SIGKILL)
                procs["kitchen-1"].wait()
                for n in range(5):
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "edge.cli",
                            "emit",
                            "test",
                            "--data",
                            json.dumps({"note": f"queued offline {n + 1}"}),
                            "--config",
                            str(workdir / "kitchen-1.toml"),
                        ],
                        check=True,
                        capture_output=True,
                    )
                depth = _outbox(workdir, "kitchen-1")["depth"]
                _say(f"  kitchen-1 outbox while down: {depth} unconfirmed")
                _say("malformed message published on stall-7's topic (goes to dead letters)")
                _publish_garbage(port)
            elif stage == 1 and t > max(6.0, seconds * 0.5):
                stage = 2
                _say("power back at kitchen-1: restarted; its backlog drains")
                procs["kitchen-1"] = _edge(workdir, "kitchen-1", log)
    except KeyboardInterrupt:
        pass
    finally:
        for device in BOXES:
            if device in procs:
                procs[device].send_signal(signal.SIGTERM)
        for device in BOXES:
            if device in procs:
                procs[device].wait(20)
    ok = _summary(workdir, store)
    procs["cloud"].send_signal(signal.SIGTERM)
    procs["cloud"].wait(20)
    store.close()
    return 0 if ok else 1


def _wait_file(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _publish_garbage(port: int) -> None:
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", protocol="3.1.1")
    client = make_client(settings, "demo-prankster", protocols(settings)[0])
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish("shian/v1/dev/stall-7/events", b"{not json", qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _summary(workdir: Path, store: Store) -> bool:
    """Wait until the cloud holds every event made on each box, then report."""
    made = {d: _outbox(workdir, d) for d in BOXES}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        devices = {d["device"]: d for d in store.devices()}
        if all(devices.get(d, {}).get("events", 0) >= made[d]["last_seq"] for d in BOXES):
            break
        time.sleep(0.2)
    click.echo("")
    click.echo("device      made  stored  missing  duplicates absorbed  state")
    ok = True
    for d in BOXES:
        row = devices.get(d, {})
        stored, missing = row.get("events", 0), row.get("missing", 0)
        ok = ok and stored == made[d]["last_seq"] and missing == 0
        click.echo(
            f"{d:<11} {made[d]['last_seq']:>4}  {stored:>6}  {missing:>7}  "
            f"{row.get('duplicates', 0):>19}  {row.get('state', '?')}"
        )
    dead = store.deadletters()
    click.echo(f"dead letters: {len(dead)}" + (f" (last: {dead[0]['reason']})" if dead else ""))
    click.echo(
        "every event made on a box is in the cloud exactly once"
        if ok
        else "MISMATCH: see .demo/processes.log"
    )
    cli = Path(sys.executable).parent / "shian-cloud"
    click.echo(f"\nLook around: {cli} events list --config {workdir}/cloud.toml")
    return ok
