"""``shian-cloud demo``: the whole system on one machine, as a newcomer should first see it.

A collector with its embedded broker and public web page; a kitchen box and a stall box (real
``shian-edge run`` processes with their own outboxes) making sample events. The stall gets its
catalog pushed from the cloud, reads a virtual scale on a pseudo-terminal (replaying a real
capture), sells through its local API, and prints to a file; the ticket's public page is
checked. Midway the kitchen box is killed with SIGKILL, events are queued while it is down, and
it is restarted; a malformed message is published. Later 24 market stalls of one district lose
power together, and supervisor li gets one district incident instead of 24 alerts (``demo_city``).
At the end every event made on a box must be in the cloud exactly once, the ticket genuine and
the incident whole; the demo exits non-zero otherwise. It talks to the boxes only through their
command line and HTTP API, as an operator would.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import click

from cloud.demo_fleet import story as fleet_story
from cloud.demo_ledger import story as ledger_story
from cloud.demo_patrol import story as patrol_story
from cloud.demo_province import story as province_story
from cloud.demo_sensors import Fridge
from cloud.demo_setup import KITCHEN, SITES, STALL, DemoSetup, has_kitchen_data
from cloud.store import Store
from shared.config import MqttSettings
from shared.mqtt import make_client, protocols
from shared.secretfiles import write_secret


def hostile_messages() -> list[tuple[str, bytes]]:
    """What a broken or tampered box might send; the collector takes none of it."""
    from shared.codec import batch_payload, envelope_json
    from shared.ids import uuid7

    def claim(device: str, site: str) -> bytes:
        body = envelope_json(
            event_id=str(uuid7()),
            device=device,
            site=site,
            seq=1,
            ts="2026-11-30T04:00:00Z",
            kind="test",
            data_json='{"note": "not mine to say"}',
        )
        return batch_payload([body])

    return [
        (f"shian/v1/dev/{STALL}/events", b"{not json"),
        (f"shian/v1/dev/{STALL}/events", claim(STALL, SITES[KITCHEN])),
        ("shian/v1/dev/ghost-1/events", claim("ghost-1", SITES[KITCHEN])),
    ]


def _say(text: str) -> None:
    click.echo(click.style(time.strftime("%H:%M:%S "), dim=True) + text)


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"demo: timed out waiting for {what}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.s = DemoSetup(workdir)
        self.w = workdir
        self.log = (workdir / "processes.log").open("ab")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.shown: set[str] = set()
        self.ticket: dict[str, Any] | None = None
        self.ticket_url = ""
        self.ledger_ok: bool | None = None
        self.alert_id: str | None = None
        from cloud.demo_city import District
        from cloud.demo_fleet import Keeper

        self.district = District(self)
        self.keeper = Keeper(self)  # Restart=always, as systemd does for a real box
        self.fleet_ok: bool | None = None
        self.patrol_ok: bool | None = None
        self.province = ""
        self.wang_password = ""
        from cloud.demo_live import LiveKitchen

        self.live = LiveKitchen(workdir, self.s.web_port, _say)
        self.fridge = Fridge(workdir)

    def cli(self, module: str, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=self.log, stderr=self.log
        )

    def run_cli(self, module: str, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", module, *args], capture_output=True, check=True, text=True
        )
        return out.stdout

    def edge(self, device: str) -> None:
        self.procs[device] = self.cli("edge.cli", "run", "--config", str(self.w / f"{device}.toml"))
        self.keeper.keep(device)

    def outbox(self, device: str) -> dict[str, Any]:
        out = self.run_cli(
            "edge.cli",
            "outbox",
            "status",
            "--json",
            "--limit",
            "1",
            "--config",
            str(self.w / f"{device}.toml"),
        )
        stats: dict[str, Any] = json.loads(out)["outbox"]
        return stats

    # -- the story ------------------------------------------------------------------------------
    def start(self) -> Store:
        s = self.s
        _say(
            f"collector + embedded MQTT broker on 127.0.0.1:{s.broker_port}, public pages on "
            f"http://127.0.0.1:{s.web_port} (logs: {self.w}/processes.log)"
        )
        self.install()
        self.procs["cloud"] = self.cli("cloud.cli", "run", "--config", str(self.w / "cloud.toml"))
        _wait(lambda: _listening(s.broker_port) and _listening(s.web_port), 20, "the collector")
        self.register()
        self.procs["scale"] = self.cli("edge.cli", "scale", "simulate", *s.scale_args())
        _wait(s.scale_link.exists, 10, "the virtual scale")
        _say(f"virtual scale on {s.scale_link} (a pseudo-terminal replaying a real capture)")
        if has_kitchen_data():
            for step in s.kitchen_steps():
                self.run_cli("edge.cli", *step)
            _say(
                f"{KITCHEN}: 3 cameras fed by videos made from the test photos (a cat walks "
                "into cam1), model ssd_oidv4 installed and its sha256 checked"
            )
        else:
            _say(f"{KITCHEN}: no test photos beside the project, so no cameras in this demo")
        for device in SITES:
            _say(f"edge box {device} started (site {SITES[device]})")
            self.edge(device)
        _say(
            f"screens: the hall screen http://127.0.0.1:{s.hall_port}/hall , the stall screen "
            f"http://127.0.0.1:{s.stall_api_port}/stall (open them while the demo runs)"
        )
        out = self.run_cli(
            "cloud.cli",
            "catalog",
            "push",
            STALL,
            str(self.w / "products.csv"),
            "--config",
            str(self.w / "cloud.toml"),
        )
        _say(f"cloud -> {STALL}: {out.strip()}")
        _wait((self.w / "cloud.db").exists, 20, "the cloud database")
        return Store(self.w / "cloud.db")

    def sell(self) -> None:
        api = f"http://127.0.0.1:{self.s.stall_api_port}/api/stall"
        _wait(lambda: _listening(self.s.stall_api_port), 20, "the stall API")
        _wait(lambda: _http("GET", api)["catalog"], 20, "the catalog on the stall")
        _http("POST", api + "/select", {"plu": "101"})
        w = _wait(
            lambda: (st := _http("GET", api)["weight"])["sellable"] and st, 20, "a stable weight"
        )
        _say(f"vendor at {STALL} picks 白菜 (PLU 101); the scale reads a stable {w['grams']} g")
        sold = _http("POST", api + "/print", {})
        self.ticket, self.ticket_url = sold["ticket"], sold["url"]
        t = sold["ticket"]
        _say(
            f"  ticket {t['ticket_id']}: {t['quantity']} g x {t['unit_price_cents'] / 100:.2f}"
            f"/kg = ¥{t['total_cents'] / 100:.2f}, committed, then printed to "
            f"{self.s.printer_file}"
        )
        _say(f"  the buyer's QR opens: {sold['url']}")

    def power_cut(self) -> None:
        _say(f"power cut at {KITCHEN}: SIGKILL, then 5 events queued while it is down")
        self.keeper.hold(KITCHEN)
        self.procs[KITCHEN].send_signal(signal.SIGKILL)
        self.procs[KITCHEN].wait()
        conf = str(self.w / f"{KITCHEN}.toml")
        for n in range(5):
            self.run_cli(
                "edge.cli",
                "emit",
                "test",
                "--data",
                json.dumps({"note": f"queued offline {n + 1}"}),
                "--config",
                conf,
            )
        _say(f"  {KITCHEN} outbox while down: {self.outbox(KITCHEN)['depth']} unconfirmed")
        _say(
            f"a hostile box: a malformed message, {STALL} claiming {KITCHEN}'s site, and a "
            "box nobody registered (each a dead letter with its reason; nothing else lost)"
        )
        settings = MqttSettings(url=f"mqtt://127.0.0.1:{self.s.broker_port}", protocol="3.1.1")
        client = make_client(settings, "demo-prankster", protocols(settings)[0])
        client.connect("127.0.0.1", self.s.broker_port)
        client.loop_start()
        for topic, payload in hostile_messages():
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        client.disconnect()
        client.loop_stop()

    def install(self) -> None:
        """The operator registers each box (the collector believes its registry, never what
        a box says of itself) and the installer takes each bundle to its box."""
        conf = str(self.w / "cloud.toml")
        bundles = {}
        for device in SITES:
            out = self.run_cli("cloud.cli", "devices", "add", *self.s.register_args(device),
                               "--config", conf)  # fmt: skip
            _say(f"operator: {out.strip()}")
            path = self.w / "bundles" / f"{device}.json"
            bundles[device] = json.loads(path.read_text())
            path.unlink()  # as its note says, once its secrets are on the box
        self.s.write_boxes(bundles)

    def register(self) -> None:
        """The operator registers the sites in their district and a supervisor; the
        supervisor's phone starts listening."""
        conf = str(self.w / "cloud.toml")
        for site in SITES.values():
            self.run_cli(
                "cloud.cli", "sites", "set", site, "--district", "xianan", "--config", conf
            )
        self.supervisor("wang", "xianan", "phone")
        _say("sites registered in district xianan; supervisor wang is watching its alerts")
        site = SITES[KITCHEN]
        self.run_cli("cloud.cli", "sites", "describe", site, "--kind", "school_canteen",
                     "--grade", "good", "--config", conf)  # fmt: skip
        out = self.run_cli("cloud.cli", "sites", "qr", site, "--out",
                           str(self.w / f"{site}.png"), "--config", conf)  # fmt: skip
        _say(f"the canteen's public page (its QR code at the door: {self.w / site}.png): "
             f"{out.splitlines()[0]}")  # fmt: skip

    def supervisor(self, name: str, district: str, proc: str) -> None:
        """Register a supervisor and start their phone: ``alerts watch`` into a log file."""
        conf = str(self.w / "cloud.toml")
        out = self.run_cli(
            "cloud.cli", "supervisors", "add", name, "--district", district, "--json",
            "--config", conf,
        )  # fmt: skip
        if name == "wang":  # their login to the console (and to the broker)
            self.wang_password = json.loads(out)["password"]
            write_secret(self.w / "wang.password", self.wang_password + "\n")
        phone = (self.w / f"supervisor-{name}-phone.log").open("ab")
        self.procs[proc] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cloud.cli",
                "alerts",
                "watch",
                "--district",
                district,
                "--config",
                conf,
            ],
            stdout=phone,
            stderr=self.log,
        )

    def alert_loop(self, store: Store) -> None:
        """The closed loop: the kitchen's alert is acknowledged, rectification is requested,
        the business rectifies from its box with a photo, the supervisor verifies."""
        if not has_kitchen_data():
            return
        alert = _wait(
            lambda: next(
                (
                    a
                    for a in store.alerts.list(district="xianan")
                    if a["type"] == "animal_in_kitchen"
                ),
                None,
            ),
            40,
            "the kitchen's alert",
        )
        self.alert_id = aid = alert["id"]
        kconf = str(self.w / f"{KITCHEN}.toml")
        _say(f"alert {aid}: [{alert['severity']}] {alert['title']} -> supervisor wang")
        from cloud.demo_console import ConsoleUser

        console = f"http://127.0.0.1:{self.s.web_port}"
        _say(f"  wang logs in to the console, {console}/console (as wang, password in "
             f"{self.w}/wang.password), in a browser")  # fmt: skip
        wang = ConsoleUser(console, "wang", self.wang_password, self.w)
        try:
            _say(f"  wang acknowledges on the page: {wang.act(aid, 'ack')}")
            said = wang.act(aid, "request_rectification", "find how the cat got in; seal it", 2)
            _say(f"  wang requests rectification, due in 2 h: {said}")
            self.rectify_from_box(store, aid, kconf, "door fixed, cat out")
            said = wang.act(aid, "verify", "checked on the evening patrol")
            _say(f"  wang verifies: {said} (the page: {wang.screenshot(aid)})")
        finally:
            wang.close()

    def centre(self) -> None:
        """The command-centre wall, as a big screen shows it: no interaction."""
        from cloud.demo_console import ConsoleUser

        if not self.wang_password:
            return
        # through the media server when there is one: it serves the views and proxies the rest,
        # so the wall, like a phone, talks to one host
        media = self.live.media
        base = media.http_url if media is not None else f"http://127.0.0.1:{self.s.web_port}"
        wang = ConsoleUser(base, "wang", self.wang_password, self.w)
        try:
            shot, alerts = wang.centre()
        except Exception as exc:  # the browser's own errors: say what the wall showed
            raise RuntimeError(f"{exc}; its screen said {wang.screen_text()!r}") from None
        finally:
            wang.close()
        _say(
            f"the command-centre wall runs at {base}/centre: {alerts} alerts in its ticker, "
            f"the kitchens in turn (screenshot: {shot})"
        )

    def rectify_from_box(self, store: Store, aid: str, kconf: str, note: str) -> None:
        """The business sees the notice on its box and answers with a photo."""
        _wait(
            lambda: any(
                n["id"] == aid and n["state"] == "rectification_requested"
                for n in json.loads(
                    self.run_cli("edge.cli", "notices", "list", "--json", "--config", kconf)
                )
            ),
            30,
            "the notice on the kitchen box",
        )
        _say(f"  {KITCHEN} shows the notice; the canteen answers with a photo")
        photo = self.s.videos.parent / "fixed.jpg"
        from PIL import Image

        Image.new("RGB", (640, 480), (200, 196, 186)).save(photo, "JPEG")  # a mended wall
        self.run_cli(
            "edge.cli",
            "notices",
            "rectify",
            aid,
            "--note",
            note,
            "--photo",
            str(photo),
            "--config",
            kconf,
        )
        _wait(lambda: (store.alerts.get(aid) or {}).get("state") == "rectified", 30, "rectified")

    def power_back(self) -> None:
        _say(f"power back at {KITCHEN}: restarted; its backlog drains")
        self.edge(KITCHEN)

    def progress(self, store: Store) -> None:
        for e in reversed(store.events.list(limit=200)):
            if e["id"] not in self.shown:
                self.shown.add(e["id"])
                if len(self.shown) % 5 == 1 or e["kind"] != "test":
                    data = json.dumps(e["data"], ensure_ascii=False)
                    _say(
                        f"  cloud <- {e['device']:<10} #{e['seq']:<4} {e['kind']:<15} "
                        f"{data[:90] + '…' if len(data) > 90 else data}"
                    )

    def stop(self) -> None:
        self.keeper.stop()
        self.district.stop()
        for name in (KITCHEN, STALL, "scale", "phone", "phone-li"):
            if name in self.procs:
                self.procs[name].send_signal(signal.SIGTERM)
        for name in (KITCHEN, STALL, "scale", "phone", "phone-li"):
            if name in self.procs:
                self.procs[name].wait(20)
        self.live.stop()
        self.fridge.stop()

    def summary(self, store: Store) -> bool:
        """Wait until the cloud holds every event made on each box, then report."""
        made = {d: self.outbox(d)["last_seq"] for d in SITES}
        devices: dict[str, dict[str, Any]] = {}

        def all_in() -> bool:
            devices.update({d["device"]: d for d in store.devices.list()})
            return all(devices.get(d, {}).get("events", 0) >= made[d] for d in SITES)

        with contextlib.suppress(RuntimeError):
            _wait(all_in, 30, "every event in the cloud")
        click.echo("\ndevice      made  stored  missing  duplicates absorbed  state")
        ok = True
        for d in SITES:
            row = devices.get(d, {})
            stored, missing = row.get("events", 0), row.get("missing", 0)
            ok = ok and stored == made[d] and missing == 0
            click.echo(
                f"{d:<11} {made[d]:>4}  {stored:>6}  {missing:>7}  "
                f"{row.get('duplicates', 0):>19}  {row.get('state', '?')}"
            )
        dead = store.dead.list()
        reasons = Counter(r["reason"].split(":")[0] for r in dead)
        click.echo(
            f"dead letters: {len(dead)} ({', '.join(f'{k} {n}' for k, n in reasons.items())})"
        )
        ok = ok and {"not_json", "site_mismatch", "unknown_device"} <= set(reasons)
        click.echo(
            "every event made on a box is in the cloud exactly once"
            if ok
            else f"MISMATCH: see {self.w}/processes.log"
        )
        violations = store.events.list(kind="violation")
        if has_kitchen_data():
            ok = ok and bool(violations)
            if not violations:
                click.echo("MISMATCH: the kitchen reported no violation")
            for v in violations:
                d = v["data"]
                snap = f"http://127.0.0.1:{self.s.web_port}/snap/{d['snapshot']}.jpg"
                click.echo(
                    f"violation on {v['device']} {d['camera']}: {d['type']} ({d['label']} "
                    f"{d['score']:.2f}); evidence: {snap}"
                )
        if has_kitchen_data():
            a = store.alerts.get(self.alert_id) if self.alert_id else None
            ok = ok and a is not None and a["state"] == "closed"
            click.echo("\nthe alert's loop:" if a else "MISMATCH: the alert loop did not run")
            for step in (a or {}).get("history", []):
                click.echo(
                    f"  {step['at']}  {step['state']:<24} {step['actor']:<18} {step['note'][:60]}"
                )
            phone = (self.w / "supervisor-wang-phone.log").read_text(errors="replace").splitlines()
            click.echo(f"supervisor wang's phone got {len(phone)} alert messages, e.g.:")
            for line in phone[:3]:
                click.echo(f"  {line[:110]}")
        ok = self.district.report(store) and ok
        if self.ticket is not None:
            t = self.ticket
            url = f"http://127.0.0.1:{self.s.web_port}/t/{t['ticket_id']}.json?s={t['sig']}"
            verdict = _http("GET", url)["status"]
            ok = ok and verdict == "genuine"
            click.echo(f"ticket {t['ticket_id']}: the public page says {verdict}")
        else:
            ok = False
            click.echo("MISMATCH: no ticket was sold")
        click.echo(
            f"screens: http://127.0.0.1:{self.s.hall_port}/hall  "
            f"http://127.0.0.1:{self.s.stall_api_port}/stall  (while it runs: "
            "make demo DEMO_SECONDS=0)"
        )
        if self.live.media is not None:
            ok = ok and bool(self.live.result)
            click.echo(f"live view: {self.live.result or 'MISMATCH: it did not play'}")
        updates = {True: "a good update applied, a broken one rolled back by the box itself"}
        click.echo(f"updates over the air: {updates.get(bool(self.fleet_ok), 'MISMATCH')}")
        ok = ok and bool(self.fleet_ok)
        click.echo(f"fridge sensor (Modbus RTU): {self.fridge.result or 'MISMATCH: no alert'}")
        delivery = "scanned at the canteen, traced to it from the stall's ticket"
        click.echo(f"delivery: {delivery if self.ledger_ok else 'MISMATCH: not traced'}")
        ok = ok and bool(self.ledger_ok)
        ok = ok and bool(self.fridge.result)
        patrol = "a failed item became a hazard, rectified from the box, verified"
        click.echo(f"patrol: {patrol if self.patrol_ok else 'MISMATCH: the hazard is not closed'}")
        ok = ok and bool(self.patrol_ok)
        click.echo(f"province: {self.province or 'MISMATCH: an event lost or doubled'}")
        ok = ok and bool(self.province)
        cli = Path(sys.executable).parent / "shian-cloud"
        click.echo(f"\nLook around: {cli} events list --config {self.w}/cloud.toml")
        click.echo(f"            {cli} fleet status --config {self.w}/cloud.toml")
        return ok


def run_demo(workdir: Path, seconds: float) -> int:
    workdir = workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    demo = Demo(workdir)
    demo.s.live_section = demo.live.start()
    demo.s.live_cameras = demo.live.camera_config()
    demo.s.sensors = demo.fridge.config()
    demo.s.write()
    demo.fridge.start()
    store: Store | None = None
    ok = False
    try:
        store = demo.start()
        demo.district.start()
        begin = time.monotonic()
        steps = [
            (max(2.0, seconds * 0.2), demo.sell),
            (max(3.0, seconds * 0.3), demo.power_cut),
            (max(6.0, seconds * 0.5), demo.power_back),
            (max(6.5, seconds * 0.55), lambda: demo.fridge.open_door(_say)),
            (max(7.0, seconds * 0.6), lambda: demo.district.power_cut(store)),
        ]
        while seconds <= 0 or time.monotonic() - begin < seconds:
            time.sleep(1.0)
            demo.progress(store)
            while steps and time.monotonic() - begin >= steps[0][0]:
                steps.pop(0)[1]()
        while steps:  # a very short run still tells the whole story
            steps.pop(0)[1]()
        if store is not None:
            try:
                demo.alert_loop(store)
            except (RuntimeError, subprocess.CalledProcessError) as exc:
                _say(f"the alert loop did not complete: {exc}")
            try:
                demo.live.story(store, _wait)
            except (RuntimeError, OSError) as exc:
                _say(f"the live view did not complete: {exc}")
            try:
                demo.ledger_ok = ledger_story(demo, store, _say, _wait)
            except RuntimeError as exc:
                _say(f"the delivery did not complete: {exc}")
            try:
                demo.fridge.story(store, _say, _wait)
            except RuntimeError as exc:
                _say(f"the fridge's story did not complete: {exc}")
            try:
                demo.patrol_ok = patrol_story(demo, store, _say, _wait)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
                _say(f"the patrol did not complete: {exc}")
            try:
                demo.centre()
            except (RuntimeError, OSError) as exc:
                _say(f"the centre wall did not run: {exc}")
            try:
                demo.fleet_ok = fleet_story(demo, store, _say, _wait)
            except RuntimeError as exc:
                demo.fleet_ok = False
                _say(f"the updates did not complete: {exc}")
            try:
                demo.province = province_story(workdir, _say, _wait)
            except (RuntimeError, OSError, TimeoutError) as exc:
                _say(f"the province did not complete: {exc}")
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
        if store is not None:
            ok = demo.summary(store)
            store.close()
        if "cloud" in demo.procs:
            demo.procs["cloud"].send_signal(signal.SIGTERM)
            demo.procs["cloud"].wait(20)
    return 0 if ok else 1
