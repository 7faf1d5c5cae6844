"""The broker's files as the registry writes them, on a real Mosquitto: each user has the
topics of its role only, a name that would change the ACL is refused where it is stored, and
Mosquitto running as its own user reads its two files and nothing else of the cloud's."""

from __future__ import annotations

import grp
import json
import os
import pwd
import queue
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from paho.mqtt.enums import MQTTProtocolVersion

from cloud.broker_files import check_password
from cloud.cli import main as cloud_main
from cloud.config import CloudConfig
from cloud.provisioning import Registry
from cloud.store import Store
from shared.config import MqttSettings
from shared.mqtt import make_client
from tests.conftest import wait_for
from tests.real.test_provisioning import City, until
from tests.support.mosquitto import Mosquitto, find_mosquitto, free_port

pytestmark = pytest.mark.real


@pytest.fixture
def city(tmp_path: Path) -> Iterator[City]:
    c = City(tmp_path)
    yield c
    c.broker.stop()


def test_a_supervisor_cannot_publish_as_a_box(city: City) -> None:
    """Mosquitto's %u patterns applied to supervisors too: wang could publish as device wang."""
    r = city.cli(cloud_main, "supervisors", "add", "wang", "--district", "xianan", "--json")
    c, q = city.client("wang", json.loads(r.output)["password"])
    assert not until(q, "connack")[1].is_failure
    for topic in ("shian/v1/dev/wang/events", "shian/v1/dev/wang/status"):
        info = c.publish(topic, b'{"v":1,"events":[]}', qos=1)
        ev = until(q, "puback", info.mid, also="gone")
        assert ev[0] == "gone" or ev[2].is_failure, f"a supervisor published on {topic}"
    acl = (city.tmp / "broker" / "acl").read_text()
    assert "\npattern " not in acl and "%u" not in acl
    c.disconnect()
    c.loop_stop()


@pytest.mark.parametrize(
    "district", ["+", "#", "x\ntopic readwrite #", "a/b", "x y", "", "é", "x" * 65]
)
def test_a_name_that_would_change_the_acl_is_refused(city: City, district: str) -> None:
    before = (city.tmp / "broker" / "acl").read_text()
    runner = CliRunner()
    conf = ["--config", str(city.conf)]
    for args in (
        ["supervisors", "add", "eve", "--district", district],
        ["devices", "add", "box-x", "--site", "s1", "--district", district, "--role", "kitchen"],
        ["sites", "set", "s1", "--district", district],
        ["supervisors", "add", "eve", "--district", district, "--no-credentials"],
    ):
        r = runner.invoke(cloud_main, [*args, *conf])
        assert r.exit_code != 0 and "not a valid name" in r.output, (args, r.output)
    assert (city.tmp / "broker" / "acl").read_text() == before
    store = Store(city.cfg.store.path)
    assert store.registry.get("eve") is None and store.sites.table("sites") == []
    os.kill(city.broker.proc.pid, signal.SIGHUP)  # type: ignore[union-attr]
    c, q = city.client("shian-collector", (city.tmp / "collector_password").read_text().strip())
    assert not until(q, "connack")[1].is_failure, "the broker still serves"
    c.disconnect()
    c.loop_stop()


@pytest.fixture
def broker_home() -> Iterator[Path]:
    """A folder Mosquitto's own user can reach, as the installer makes it: the broker files'
    folder group ``mosquitto``, setgid, 2750; everything else of the cloud stays the cloud's."""
    if os.geteuid() != 0 or find_mosquitto() is None:
        pytest.skip("needs root and Mosquitto to start Mosquitto as its own user")
    try:
        user = pwd.getpwnam("mosquitto")
        gid = grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        pytest.skip("no mosquitto user (the Debian package makes it)")
    home = Path(tempfile.mkdtemp(prefix="shian-broker-", dir="/tmp"))
    os.chmod(home, 0o755)
    (home / "broker").mkdir()
    os.chown(home / "broker", 0, gid)
    os.chmod(home / "broker", 0o2750)
    (home / "mosquitto").mkdir()
    os.chown(home / "mosquitto", user.pw_uid, gid)
    (home / "private").mkdir(mode=0o700)
    yield home
    shutil.rmtree(home, ignore_errors=True)


def test_mosquitto_as_its_own_user_reads_its_files_and_nothing_more(broker_home: Path) -> None:
    private = broker_home / "private"
    cfg = CloudConfig.model_validate(
        {
            "data_dir": str(private),
            "store": {"path": str(private / "cloud.db")},
            "tickets": {"keys_dir": str(private / "keys")},
            "provisioning": {
                "broker_dir": str(broker_home / "broker"),
                "bundle_dir": str(private / "bundles"),
            },
        }
    )
    store = Store(cfg.store.path)
    registry = Registry(cfg, store)
    registry.collector_user()
    bundle = registry.add_device("stall-1", "market-1", "xianan", "stall")
    for name in ("passwd", "acl"):
        st = (broker_home / "broker" / name).stat()
        assert oct(st.st_mode & 0o777) == "0o640" and grp.getgrgid(st.st_gid).gr_name == "mosquitto"
    line = next(
        x for x in (broker_home / "broker" / "passwd").read_text().splitlines() if "stall-1" in x
    )
    assert check_password(bundle["mqtt"]["password"], line.split(":", 1)[1])
    port = free_port()
    broker = Mosquitto(
        broker_home / "mosquitto",
        port=port,
        anonymous=False,
        user="mosquitto",
        extra=f"password_file {broker_home / 'broker/passwd'}\n"
        f"acl_file {broker_home / 'broker/acl'}",
    ).start()
    try:
        assert login(port, "stall-1", bundle["mqtt"]["password"]), "Mosquitto read its passwd"
        assert not login(port, "stall-1", "wrong")
        second = registry.add_device("kitchen-2", "canteen-2", "xianan", "kitchen")
        os.kill(broker.proc.pid, signal.SIGHUP)  # type: ignore[union-attr]
        wait_for(
            lambda: login(port, "kitchen-2", second["mqtt"]["password"]),
            what="kitchen-2 let in once Mosquitto, as mosquitto, has re-read its files",
        )
        for secret in (
            private / "cloud.db",
            Path(bundle["path"]),
            next((private / "keys").glob("stall-1.*.key")),
        ):
            out = subprocess.run(["cat", str(secret)], user="mosquitto", capture_output=True)
            assert out.returncode != 0, f"the broker's user can read {secret}"
    finally:
        broker.stop()
        store.close()


def login(port: int, user: str, password: str) -> bool:
    """Whether the broker lets ``user`` in with ``password`` (a CONNACK, then goodbye)."""
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()
    settings = MqttSettings(url=f"mqtt://127.0.0.1:{port}", username=user, password=password)
    c = make_client(settings, f"{user}-login", MQTTProtocolVersion.MQTTv5)
    c.on_connect = lambda _c, _u, _f, rc, _p: q.put(rc)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        return not q.get(timeout=10).is_failure
    finally:
        c.disconnect()
        c.loop_stop()
