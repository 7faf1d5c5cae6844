"""The package as installed: the wheel built from this checkout, installed by role in fresh
virtual environments outside the source tree, and the installer's commands run from there
(docs/installing.md). The tests' own editable install cannot see what a wheel lacks."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomli_w
from paho.mqtt.enums import MQTTProtocolVersion

from shared import topics
from shared.config import MqttSettings
from shared.ids import uuid7
from shared.mqtt import make_client
from tests.conftest import wait_for
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.wheel import ROOT, Install, build_wheel, install

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def edge(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    return install(wheel, "edge", tmp_path_factory.mktemp("box") / "venv")


@pytest.fixture(scope="module")
def cloud(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    return install(wheel, "cloud", tmp_path_factory.mktemp("cloud") / "venv")


def imports(venv: Install, module: str, cwd: Path) -> bool:
    return venv.run("python", "-c", f"import {module}", cwd=cwd, check=False).returncode == 0


def test_the_wheel_carries_what_the_code_reads_and_no_tests(wheel: Path) -> None:
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "shian_profiles/scales/ad_st_gs.toml",
        "shian_profiles/models/ssd_oidv4.toml",
        "shian_profiles/boxes/pi5.toml",
        "shian_profiles/cameras/hikvision.toml",
        "shian_profiles/printers/generic_58mm.toml",
        "shian_profiles/sensors/xy_md02.toml",
        "shian_units/shian-edge.service",
        "shian_units/shian-cloud.service",
        "shian_units/mosquitto/shian.conf",
        "edge/display/static/hall.html",
        "cloud/live/static/live.js",
        "cloud/console/static/photos.js",
        "cloud/patrol/checklists/school_canteen.toml",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "bench/", "systemd/"))]


def test_every_package_of_the_source_is_in_the_wheel(wheel: Path) -> None:
    import tomllib
    import zipfile

    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    source = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("edge", "cloud", "shared")
        for p in (ROOT / top).rglob("__init__.py")
    }
    assert source <= set(listed["packages"]), "add the new package to pyproject.toml"
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in source:
        assert f"{pkg.replace('.', '/')}/__init__.py" in names


def test_a_box_installs_no_database_driver_or_broker(edge: Install, tmp_path: Path) -> None:
    for present in ("cv2", "ai_edge_litert", "serial", "escpos", "edge.agent"):
        assert imports(edge, present, tmp_path), present
    for absent in ("psycopg", "amqtt", "psycopg_pool"):
        assert not imports(edge, absent, tmp_path), absent


def test_the_cloud_installs_no_opencv_or_litert(cloud: Install, tmp_path: Path) -> None:
    for present in ("psycopg", "amqtt", "PIL", "cloud.collector"):
        assert imports(cloud, present, tmp_path), present
    for absent in ("cv2", "ai_edge_litert", "serial"):
        assert not imports(cloud, absent, tmp_path), absent


def test_the_installers_commands_on_a_box(
    edge: Install, tmp_path: Path, mosquitto: Mosquitto
) -> None:
    site = tmp_path / "site"  # the installer's shell is anywhere but the source tree
    site.mkdir()
    r = edge.run("shian-edge", "scale", "profiles", cwd=site)
    assert "ad_st_gs" in r.stdout and "mettler_8217" in r.stdout
    r = edge.run("shian-edge", "sensors", "profiles", cwd=site)  # pymodbus comes with a box
    assert "xy_md02" in r.stdout and "temperature@1" in r.stdout
    models = tmp_path / "var" / "models"
    r = edge.run("shian-edge", "models", "install", "--models-dir", str(models), cwd=site)
    assert "ssd_oidv4" in r.stdout and "sha256 verified" in r.stdout
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "kitchen.jpg"), np.full((360, 640, 3), 128, np.uint8))
    conf = tmp_path / "edge.toml"
    conf.write_text(
        tomli_w.dumps(
            {
                "device": "kitchen-1",
                "site": "canteen-001",
                "data_dir": str(tmp_path / "var"),
                "mqtt": {"url": mosquitto.url},
                "kitchen": {
                    "model": "ssd_oidv4",
                    "cameras": [{"name": "cam1", "source": f"images:{photos}"}],
                },
            }
        )
    )
    r = edge.run("shian-edge", "config", "validate", "--config", str(conf), cwd=site)
    assert "OK" in r.stdout
    r = edge.run("shian-edge", "doctor", "--json", "--config", str(conf), cwd=site, check=False)
    assert "Traceback" not in r.stderr, r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)}
    for passed in ("files", "disk", "broker", "publish own topic", "model", "camera cam1"):
        assert checks[passed]["ok"], checks[passed]
    units = tmp_path / "units"
    r = edge.run(
        "shian-edge",
        "install-service",
        "--dest",
        str(units),
        "--no-enable",
        "--user",
        "nobody",
        "--config",
        str(conf),
        cwd=site,
    )
    unit = (units / "shian-edge.service").read_text()
    assert f"ExecStart={edge.bin / 'shian-edge'} run --config {conf}" in unit


def test_the_installers_path_on_the_cloud(cloud: Install, tmp_path: Path) -> None:
    """docs/installing.md's cloud steps from the installed package, in a shell elsewhere:
    the TLS files, the collector's broker login, Mosquitto's config (run here as written,
    on free ports), the service units, a box registered, the collector started; a box's event
    over TLS with its own login reaches the store."""
    data, web, tls_port, local = tmp_path / "cloud", free_port(), free_port(), free_port()
    conf = tmp_path / "cloud.toml"
    conf.write_text(
        tomli_w.dumps(
            {
                "data_dir": str(data),
                "mqtt": {
                    "url": f"mqtt://127.0.0.1:{local}",
                    "username": "shian-collector",
                    "password_file": str(data / "collector_password"),
                },
                "web": {"port": web},
                "provisioning": {
                    "device_broker_url": f"mqtts://127.0.0.1:{tls_port}",
                    "ca_file": str(data / "tls" / "ca.pem"),
                },
            }
        )
    )
    site = tmp_path / "elsewhere"
    site.mkdir()

    def shian(*args: str) -> str:
        return cloud.run("shian-cloud", *args, "--config", str(conf), cwd=site).stdout

    shian("broker", "certs", "--host", "127.0.0.1")
    assert "(0600)" in shian("broker", "init")
    shipped = shian("patrols", "checklists")  # the templates, read from the installed package
    assert all(f"{c}: " in shipped for c in ("school_canteen", "restaurant", "market_stall"))
    shian("broker", "config", "--dest", str(tmp_path / "shian.conf"))
    mosquitto_conf = (tmp_path / "shian.conf").read_text()
    assert f"password_file {data}/broker/passwd" in mosquitto_conf
    # the config as written, on this test's ports; it leaves persistence to Debian's main
    # config, which sets it (a setting given twice stops Mosquitto)
    assert not re.search(r"^persistence", mosquitto_conf, re.M)
    ours = mosquitto_conf.replace("listener 8883", f"listener {tls_port} 127.0.0.1").replace(
        "listener 1883 127.0.0.1", ""
    )
    broker = Mosquitto(tmp_path / "mosquitto", port=local, anonymous=False, extra=ours).start()
    shian("install-service", "--dest", str(tmp_path / "units"), "--no-enable", "--user", "nobody")
    text = (tmp_path / "units" / "shian-cloud.service").read_text()
    assert not re.search(r"@[A-Z_]+@", text), "every placeholder filled"
    shian("devices", "add", "k1", "--site", "canteen-001", "--district", "x", "--role", "kitchen")
    bundle = json.loads((data / "bundles" / "k1.json").read_text())
    assert broker.proc is not None  # what shian-broker-reload.path does on a real machine:
    broker.proc.send_signal(signal.SIGHUP)  # Mosquitto re-reads the password and ACL files
    log = (tmp_path / "collector.log").open("wb")  # a pipe nobody reads could block it
    proc = subprocess.Popen(
        [str(cloud.bin / "shian-cloud"), "run", "--config", str(conf)],
        cwd=site,
        env=cloud.env(),
        stderr=log,
    )
    try:
        settings = MqttSettings(
            url=bundle["mqtt"]["url"],
            username="k1",
            password=bundle["mqtt"]["password"],
            ca_file=data / "tls" / "ca.pem",
        )
        event = {
            "v": 1, "id": str(uuid7()), "device": "k1", "site": "canteen-001", "seq": 1,
            "ts": "2026-11-30T08:00:00.000Z", "kind": "test", "data": {"note": "installed"},
        }  # fmt: skip
        client = make_client(settings, "k1", MQTTProtocolVersion.MQTTv5)
        client.connect("127.0.0.1", tls_port)
        client.loop_start()
        wait_for(lambda: healthy(web), what="the installed collector's /healthz")
        wait_for(client.is_connected, what="the box's TLS session with its own login")
        batch = json.dumps({"v": 1, "events": [event]})
        client.publish(topics.events("k1"), batch, qos=1).wait_for_publish(10)
        wait_for(lambda: "installed" in shian("events", "list", "--json"), what="the event")
        client.disconnect()
        client.loop_stop()
        assert not list(site.iterdir()), "nothing made in the directory it was started from"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        broker.stop()


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as rsp:
            return bool(rsp.status == 200)
    except OSError:
        return False
