"""Alerts through a real Mosquitto: from a box's violation to a supervisor's subscriber and
round the loop (notice on the box, rectification from the box, verification); a box's last
will; a collector restart losing and doubling nothing; a district sees only its own."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cloud.alerts.cli import send_command
from cloud.service import CloudService
from cloud.store import Store
from edge.agent import Agent
from shared.config import MqttSettings
from shared.mqtt import make_client, protocols
from tests.conftest import ROOT, cloud_config, edge_config, register, spawn, wait_for, write_toml
from tests.support.mosquitto import Mosquitto
from tests.test_alerts_engine import violation

pytestmark = pytest.mark.real


class Supervisor:
    """A live subscriber to a district's alerts (what a phone app would be)."""

    def __init__(self, url: str, district: str, protocol: str = "auto") -> None:
        self.got: queue.SimpleQueue[tuple[str, dict[str, Any]]] = queue.SimpleQueue()
        self.seen: list[tuple[str, dict[str, Any]]] = []
        s = MqttSettings(url=url, protocol=protocol)  # type: ignore[arg-type]
        self.client = make_client(s, f"phone-{district}", protocols(s)[0])
        self.client.on_message = lambda _c, _u, m: self.got.put((m.topic, json.loads(m.payload)))
        self.client.connect(s.host, s.port)
        self.client.loop_start()
        wait_for(self.client.is_connected, what="the phone's CONNACK")
        done = self.client.subscribe(
            [(f"shian/v1/alerts/{district}/+", 1), (f"shian/v1/escalations/{district}", 1)]
        )
        assert done[0] == 0

    def messages(self) -> list[tuple[str, dict[str, Any]]]:
        while True:
            try:
                self.seen.append(self.got.get_nowait())
            except queue.Empty:
                return self.seen

    def latest(self, **match: Any) -> dict[str, Any] | None:
        for _, m in reversed(self.messages()):
            if all(m.get(k) == v for k, v in match.items()):
                return m
        return None

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_loop_from_a_box_to_a_supervisor_and_back(tmp_path: Path, mosquitto: Mosquitto) -> None:
    ccfg = cloud_config(tmp_path, mosquitto.url)
    cloud = CloudService(ccfg)
    cloud.store.sites.set("canteen-001", "xianan")
    register(cloud.store, "kitchen-1", "canteen-001", district="xianan")
    cloud.store.sites.add_supervisor("wang", "xianan")
    cloud.start()
    phone = Supervisor(mosquitto.url, "xianan")
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    agent.start()
    try:
        agent.emit("violation", violation("cam1"))
        a = wait_for(lambda: phone.latest(type="animal_in_kitchen"), what="the alert")
        assert a["state"] == "open" and a["severity"] == "critical" and a["site"] == "canteen-001"
        r = send_command(ccfg, "wang", a["id"], "verify")
        assert not r["ok"] and "cannot verify an alert that is open" in r["reason"]
        assert send_command(ccfg, "wang", a["id"], "ack")["ok"]
        r = send_command(ccfg, "wang", a["id"], "request_rectification", "seal the hole", 7200)
        assert r["ok"] and r["alert"]["due"]
        notice = wait_for(
            lambda: [n for n in agent.notices.list() if n["state"] == "rectification_requested"],
            what="notice",
        )
        photo = tmp_path / "fixed.png"
        import cv2
        import numpy as np

        cv2.imwrite(str(photo), np.full((120, 160, 3), 200, np.uint8))
        agent.notices.rectify(notice[0]["id"], "sealed, traps set", photo, tmp_path / "ev")
        done = wait_for(lambda: phone.latest(id=a["id"], state="rectified"), what="rectified")
        assert "sealed" in done["history"][-1]["note"] and "/snap/" in done["history"][-1]["note"]
        assert send_command(ccfg, "wang", a["id"], "verify", "checked")["ok"]
        wait_for(lambda: phone.latest(id=a["id"], state="closed"), what="closed")
        wait_for(lambda: agent.notices.list()[0]["state"] == "closed", what="notice closed")
        versions = [m["version"] for _, m in phone.messages() if m.get("id") == a["id"]]
        assert versions == sorted(set(versions)), "in order, no version twice"
    finally:
        agent.stop()
        phone.close()
        cloud.stop()


def test_a_box_lost_is_reported_through_its_last_will(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cloud = CloudService(cloud_config(tmp_path, mosquitto.url))
    cloud.store.sites.set("canteen-001", "xianan")
    register(cloud.store, "kitchen-1", "canteen-001", district="xianan")
    cloud.start()
    phone = Supervisor(mosquitto.url, "xianan")
    cfg = edge_config(tmp_path, mosquitto.url)
    conf = write_toml(
        tmp_path / "edge.toml",
        cfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )
    proc = spawn("edge.cli", "run", "--config", str(conf), log=tmp_path / "edge.log")
    try:
        wait_for(
            lambda: (
                cloud.store.devices.list() and cloud.store.devices.list()[0]["state"] == "online"
            ),
            what="the box online",
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        a = wait_for(lambda: phone.latest(type="device_offline"), what="device_offline")
        assert a["source"] == "kitchen-1" and "offline" in a["title"]
        proc = spawn("edge.cli", "run", "--config", str(conf), log=tmp_path / "edge.log")
        wait_for(lambda: phone.latest(type="device_offline", state="closed"), what="back online")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        phone.close()
        cloud.stop()


def test_alerts_are_neither_lost_nor_doubled_across_a_collector_restart(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    ccfg = cloud_config(tmp_path, mosquitto.url)
    Store(ccfg.store.path).sites.set("canteen-001", "xianan")
    register(Store(ccfg.store.path), "kitchen-1", "canteen-001", district="xianan")
    conf = write_toml(
        tmp_path / "cloud.toml",
        ccfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )
    proc = spawn("cloud.cli", "run", "--config", str(conf), log=tmp_path / "cloud.log")
    phone = Supervisor(mosquitto.url, "xianan")
    agent = Agent(edge_config(tmp_path, mosquitto.url))
    agent.start()
    store = Store(ccfg.store.path)
    try:
        for i in range(60):  # 20 cameras, 3 violations each
            agent.emit("violation", violation(f"cam{i % 20}"))
            if i == 25:
                wait_for(lambda: len(phone.messages()) > 5, what="alerts flowing")
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                proc = spawn("cloud.cli", "run", "--config", str(conf), log=tmp_path / "cloud.log")
        wait_for(lambda: agent.outbox.stats().depth == 0, timeout=60, what="all stored")
        wait_for(
            lambda: len({m["source"] for _, m in phone.messages() if m.get("count") == 3}) == 20,
            timeout=60,
            what="every alert's final version at the supervisor",
        )
    finally:
        agent.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        phone.close()
    alerts = store.alerts.list()
    assert len(alerts) == 20 and all(a["count"] == 3 for a in alerts), "none doubled"
    got = {(m["id"], m["version"]) for _, m in phone.messages()}
    every = {(a["id"], v) for a in alerts for v in (1, 2, 3)}
    # each alert's last change reaches the supervisor; changes taken in one batch are sent
    # once (with the final count), so earlier versions may be skipped, never invented
    assert {(a["id"], 3) for a in alerts} <= got <= every, "every alert's last change delivered"


def test_a_district_sees_only_its_own(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cloud = CloudService(cloud_config(tmp_path, mosquitto.url))
    cloud.store.sites.set("canteen-001", "xianan")
    cloud.store.sites.set("canteen-900", "chibi")
    register(cloud.store, "kitchen-1", "canteen-001", district="xianan")
    register(cloud.store, "kitchen-9", "canteen-900", district="chibi")
    cloud.start()
    xianan, chibi = Supervisor(mosquitto.url, "xianan"), Supervisor(mosquitto.url, "chibi")
    a1 = Agent(edge_config(tmp_path, mosquitto.url))
    a2 = Agent(edge_config(tmp_path, mosquitto.url, device="kitchen-9", site="canteen-900"))
    for a in (a1, a2):
        a.start()
    try:
        a1.emit("violation", violation("cam1"))
        a2.emit("violation", violation("cam7"))
        wait_for(lambda: xianan.latest(type="animal_in_kitchen"), what="xianan's alert")
        wait_for(lambda: chibi.latest(type="animal_in_kitchen"), what="chibi's alert")
        assert {m["site"] for _, m in xianan.messages()} == {"canteen-001"}
        assert {m["site"] for _, m in chibi.messages()} == {"canteen-900"}
    finally:
        for a in (a1, a2):
            a.stop()
        xianan.close()
        chibi.close()
        cloud.stop()


def test_watch_reports_an_unreadable_message_and_keeps_watching(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    from shared.alerts import AlertMessage

    ccfg = cloud_config(tmp_path, mosquitto.url)
    conf = write_toml(
        tmp_path / "cloud.toml",
        ccfg.model_dump(mode="json", exclude_none=True, exclude_defaults=True),
    )
    out, err = tmp_path / "watch.out", tmp_path / "watch.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloud.cli", "alerts", "watch", "--district", "xianan",
         "--seconds", "60", "--config", str(conf)],
        stdout=out.open("wb"), stderr=err.open("wb"), cwd=ROOT,
    )  # fmt: skip
    s = MqttSettings(url=mosquitto.url)
    client = make_client(s, "prankster", protocols(s)[0])
    client.connect(s.host, s.port)
    client.loop_start()
    good = AlertMessage(
        id="a-1", version=1, state="open", severity="major", type="no_mask",
        district="xianan", site="s1", source="cam1", title="no_mask on cam1",
        first_seen="2026-11-26T04:00:00Z", last_seen="2026-11-26T04:00:00Z", count=1,
    ).model_dump_json()  # fmt: skip
    try:

        def shown(path: Path, text: str, payload: bytes) -> bool:
            client.publish("shian/v1/alerts/xianan/s1", payload, qos=1).wait_for_publish(5)
            return text in path.read_text(errors="replace")

        wait_for(lambda: shown(err, "unreadable message on", b'{"status": 1}'), what="reported")
        wait_for(lambda: shown(out, "no_mask on cam1", good.encode()), what="still watching")
        assert proc.poll() is None
    finally:
        client.loop_stop()
        client.disconnect()
        proc.terminate()
        proc.wait(10)
