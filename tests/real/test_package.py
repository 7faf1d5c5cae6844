"""The package as installed: the wheel built from this checkout, installed by role in fresh
virtual environments outside the source tree, and the installer's commands run from there
(docs/installing.md). The tests' own editable install cannot see what a wheel lacks."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import tomli_w

from tests.conftest import wait_for, write_toml
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
        "shian_units/shian-edge.service",
        "shian_units/shian-cloud.service",
        "shian_units/mosquitto/shian.conf",
        "edge/display/static/hall.html",
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


@pytest.fixture
def collector_conf(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[Path, int]]:
    port = free_port()
    yield (
        write_toml(
            tmp_path / "cloud.toml",
            {
                "data_dir": str(tmp_path / "cloud"),
                "mqtt": {"url": mosquitto.url},
                "web": {"port": port},
            },
        ),
        port,
    )


def test_the_installers_commands_on_the_cloud(
    cloud: Install, tmp_path: Path, collector_conf: tuple[Path, int]
) -> None:
    conf, port = collector_conf
    site = tmp_path / "elsewhere"
    site.mkdir()
    r = cloud.run("shian-cloud", "broker", "init", "--config", str(conf), cwd=site)
    assert (tmp_path / "cloud" / "broker" / "acl").exists(), "in data_dir, not the cwd"
    r = cloud.run(
        "shian-cloud", "broker", "certs", "--host", "127.0.0.1", "--config", str(conf), cwd=site
    )
    assert (tmp_path / "cloud" / "tls" / "server.pem").exists(), r.stdout
    r = cloud.run(
        "shian-cloud",
        "install-service",
        "--dest",
        str(tmp_path / "units"),
        "--no-enable",
        "--user",
        "nobody",
        "--config",
        str(conf),
        cwd=site,
    )
    assert (tmp_path / "units" / "shian-broker-reload.path").exists()
    text = (tmp_path / "units" / "shian-cloud.service").read_text()
    assert not re.search(r"@[A-Z_]+@", text), "every placeholder filled"
    proc = subprocess.Popen(
        [str(cloud.bin / "shian-cloud"), "run", "--config", str(conf)],
        cwd=site,
        env=cloud.env(),
        stderr=subprocess.PIPE,
    )
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as rsp:
                    return bool(rsp.status == 200)
            except OSError:
                return False

        wait_for(healthy, what="the installed collector's /healthz")
        assert not list(site.iterdir()), "nothing made in the directory it was started from"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
