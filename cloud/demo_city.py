"""The demo's market district: a few dozen boxes that only connect (each with its last will and
an online status) and wait, in a process of their own, so that the demo can cut their power
together with SIGKILL and show the storm of last wills becoming one district incident
(``District`` is that part of the demo's story). The first box's clock was set two hours
ahead by hand: the collector says so with a ``clock_skew`` alert.

    python -m cloud.demo_city --port 1883 --boxes 24 --prefix chibi
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared import SCHEMA_VERSION, topics
from shared.models import Status

if TYPE_CHECKING:
    from cloud.demo import Demo
    from cloud.store import Store


def status(device: str, site: str, state: str, reason: str = "", ahead_s: float = 0) -> str:
    now = datetime.now(UTC) + timedelta(seconds=ahead_s)
    body = {"v": SCHEMA_VERSION, "device": device, "site": site, "state": state, "ts": now}
    return Status.model_validate({**body, "reason": reason}).model_dump_json(exclude_none=True)


def site_of(prefix: str, n: int) -> str:
    return f"{prefix}-market-{n:02d}"


class _Box:
    """One district box: announces itself online on every connection, as a real box does."""

    def __init__(
        self, device: str, site: str, port: int, online: threading.Semaphore, ahead_s: float = 0
    ) -> None:
        self.device, self.site, self._online, self.ahead_s = device, site, online, ahead_s
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device)
        c.will_set(topics.status(device), status(device, site, "offline", "will"), 1, retain=True)
        c.reconnect_delay_set(1, 2)
        c.on_connect = self._connected
        c.on_publish = self._published
        self._counted = False
        self.client = c
        c.connect_async("127.0.0.1", port, keepalive=60)  # paho retries until it is in
        c.loop_start()

    def _connected(self, client: mqtt.Client, *_: Any) -> None:
        client.publish(
            topics.status(self.device),
            status(self.device, self.site, "online", ahead_s=self.ahead_s),
            1,
            retain=True,
        )

    def _published(self, *_: Any) -> None:  # it publishes nothing but its online status
        if not self._counted:
            self._counted = True
            self._online.release()


@click.command()
@click.option("--port", type=int, required=True, help="The broker's port on 127.0.0.1.")
@click.option("--boxes", type=int, default=24, show_default=True, help="How many boxes.")
@click.option("--prefix", default="chibi", show_default=True, help="Names of boxes and sites.")
@click.option("--timeout", type=float, default=60, show_default=True, help="Seconds to get online.")
@click.option("--first-ahead-s", type=float, default=0, help="The first box's clock is this fast.")
def main(port: int, boxes: int, prefix: str, timeout: float, first_ahead_s: float) -> None:
    """Connect the boxes, print "ready" once the broker has every online status, and wait to be
    killed.

    Example: python -m cloud.demo_city --port 1883 --boxes 24
    """
    online = threading.Semaphore(0)
    fleet = [
        _Box(f"{prefix}-stall-{n:02d}", site_of(prefix, n), port, online, first_ahead_s * (n == 0))
        for n in range(boxes)
    ]
    deadline = time.monotonic() + timeout
    for _ in fleet:
        if not online.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise click.ClickException(f"the broker on port {port} did not take every box in time")
    click.echo("ready")
    signal.pause()


if __name__ == "__main__":
    main()


AHEAD_S = 7200.0
"""The first district box's clock, set two hours fast by hand."""


class District:
    """The demo's part for issue 8: a market district whose power fails all at once."""

    def __init__(self, demo: Demo, boxes: int = 24, district: str = "chibi") -> None:
        self.demo, self.boxes, self.district = demo, boxes, district
        self.proc: subprocess.Popen[str] | None = None
        self.incident: str | None = None

    def start(self) -> None:
        from cloud.demo import _say

        d, conf = self.demo, str(self.demo.w / "cloud.toml")
        csv_path = d.w / "city-sites.csv"
        lines = [
            f"{site_of(self.district, n)},{self.district},菜市场 stall {n}"
            for n in range(self.boxes)
        ]
        csv_path.write_text("site,district,name\n" + "\n".join(lines) + "\n")
        out = d.run_cli("cloud.cli", "sites", "import", str(csv_path), "--config", conf)
        boxes = d.w / "city-boxes.csv"  # registered like any install: the registry is believed
        rows = [
            f"{self.district}-stall-{n:02d},{site_of(self.district, n)},{self.district},stall,"
            f"{self.district} 菜市场,{n:02d},-"
            for n in range(self.boxes)
        ]
        boxes.write_text("device,site,district,role,market,stall_no,retailer\n" + "\n".join(rows))
        d.run_cli("cloud.cli", "devices", "import", str(boxes), "--config", conf)
        d.supervisor("li", self.district, "phone-li")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud.demo_city",
                "--port",
                str(d.s.broker_port),
                "--boxes",
                str(self.boxes),
                "--prefix",
                self.district,
                "--first-ahead-s",
                str(AHEAD_S),
            ],
            stdout=subprocess.PIPE,
            stderr=d.log,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            code = self.proc.wait()
            raise RuntimeError(
                f"the district's boxes did not start (exit {code}; see {d.w}/processes.log)"
            )
        _say(
            f"{out.strip()}: {self.boxes} market stalls of {self.district} online; "
            f"supervisor li watches {self.district}"
        )

    def power_cut(self, store: Store) -> None:
        from cloud.demo import _say, _wait

        assert self.proc is not None
        _say(
            f"power cut in {self.district}: {self.boxes} boxes lose power together (SIGKILL); "
            "the broker sends each one's last will"
        )
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

        def incident() -> dict[str, Any] | None:
            found = store.alerts.list(district=self.district)
            a = next((x for x in found if x["type"] == "district_outage"), None)
            full = store.alerts.get(a["id"]) if a else None
            return full if full and len(full["boxes"]) == self.boxes else None

        a = _wait(incident, 30, "the district incident")
        self.incident = a["id"]
        _say(
            f"  -> one incident for supervisor li: [{a['severity']}] {self.boxes} boxes "
            f"offline in district {self.district}, each box listed"
        )

    def report(self, store: Store) -> bool:
        a = store.alerts.get(self.incident) if self.incident else None
        if a is None:
            click.echo(f"MISMATCH: no incident for the power cut in {self.district}")
            return False
        singles = [
            x
            for x in store.alerts.list(district=self.district)
            if x["type"] == "device_offline" and x["state"] != "closed"
        ]
        phone = (self.demo.w / "supervisor-li-phone.log").read_text(errors="replace")
        click.echo(
            f"\npower cut in {self.district}: {len(a['boxes'])} boxes -> 1 incident "
            f"({a['title']}); {len(singles)} box alerts left open; supervisor li's phone got "
            f"{len(phone.splitlines())} messages, not {self.boxes} alerts"
        )
        fast = f"{self.district}-stall-00"
        skew = [x for x in store.alerts.list(district=self.district) if x["type"] == "clock_skew"]
        if not skew:
            click.echo(f"MISMATCH: no clock_skew alert for {fast}, whose clock is 2 h fast")
        else:
            click.echo(
                f"clock: {fast}'s clock was set 2 h fast by hand -> {skew[0]['title']} "
                "(its times kept, with the time received beside them)"
            )
        return len(a["boxes"]) == self.boxes and not singles and bool(skew)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
