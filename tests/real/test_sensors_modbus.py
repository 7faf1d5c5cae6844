"""Each sensor profile against a real Modbus RTU server (pymodbus's own, not bytes made here)
on a pseudo-terminal, read through pyserial by the box's code: values of every profile, CRC
errors on the line, a sensor gone silent and one that returns; then the sensors' worker on a
controlled clock, whose events all validate as the collector will validate them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.agent import Agent
from edge.config import OutboxSettings
from edge.sensors.config import SensorSettings
from edge.sensors.modbus import Bus
from edge.sensors.profiles import SensorError, load_sensor_profile
from edge.sensors.service import Sensors
from edge.sensors.virtual import VirtualSensor
from edge.store.outbox import Outbox
from shared.kinds import validate_data
from tests.conftest import ARTIFACTS, edge_config
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.real
T0 = 1_800_000_000.0


@pytest.fixture
def fridge(tmp_path: Path) -> Iterator[VirtualSensor]:
    s = VirtualSensor(tmp_path / "ttyFridge", load_sensor_profile("xy_md02"), address=1)
    s.start(temperature=4.0, humidity=55.0)
    yield s
    s.stop()


@pytest.mark.parametrize("name", ["xy_md02", "renke_rs_ws", "pt100_rs485"])
def test_each_profile_reads_a_real_modbus_server(tmp_path: Path, name: str) -> None:
    profile = load_sensor_profile(name)
    sensor = VirtualSensor(tmp_path / "tty", profile, address=7).start(
        temperature=-18.4, humidity=71.5
    )
    bus = Bus(str(sensor.link), profile.baudrate, profile.parity, timeout_s=0.5)
    try:
        got = bus.read(profile, 7)
        assert got["temperature"] == -18.4  # below zero: two's complement
        if "humidity" in {v.quantity for v in profile.values}:
            assert got["humidity"] == 71.5
        sensor.set(temperature=123.4)  # a disinfection cabinet's heat
        if profile.values[0].quantity != "humidity" or name == "renke_rs_ws":
            assert bus.read(profile, 7)["temperature"] == 123.4
        sensor.modem.corrupt = True  # type: ignore[union-attr]  # noise on the line
        with pytest.raises(SensorError):
            bus.read(profile, 7)
        sensor.modem.corrupt = False  # type: ignore[union-attr]
        assert bus.read(profile, 7)["temperature"] == 123.4  # and it reads again
    finally:
        bus.close()
        sensor.stop()


def test_the_worker_on_a_controlled_clock(tmp_path: Path, fridge: VirtualSensor) -> None:
    outbox = Outbox(tmp_path / "outbox.db", "k1", "s1", OutboxSettings(), clock=lambda: T0)
    events: list[tuple[str, dict[str, Any]]] = []

    def emit(kind: str, data: dict[str, Any]) -> None:
        validate_data(kind, data)  # as the collector will
        events.append((kind, data))

    cfg = SensorSettings(name="fridge-1", kind="fridge", port=str(fridge.link),
                         profile="xy_md02", poll_s=10, hold_s=300, silent_s=60,
                         keep_raw_h=1)  # fmt: skip
    sensors = Sensors([cfg], outbox, emit, clock=lambda: T0)
    start = T0 - T0 % 60
    try:
        t = start
        for _ in range(7):  # a minute of good readings
            sensors.poll(t)
            t += 10
        minute = [d for k, d in events if k == "sensor_minute"]
        assert len(minute) == 1 and minute[0]["values"]["temperature"]["n"] == 6
        fridge.set(temperature=11.0)  # the door left open
        while t < start + 70 + 290:
            sensors.poll(t)
            t += 10
        assert not [k for k, _ in events if k == "sensor_excursion"]  # not yet held long enough
        for _ in range(3):
            sensors.poll(t)
            t += 10
        raised = [d for k, d in events if k == "sensor_excursion"]
        assert [d["state"] for d in raised] == ["raised"] and raised[0]["worst"] == 11.0
        fridge.set(temperature=5.0)
        sensors.poll(t)
        t += 10
        assert [d["state"] for k, d in events if k == "sensor_excursion"] == ["raised", "cleared"]
        fridge.modem.silent = True  # type: ignore[union-attr]  # unplugged
        for _ in range(8):
            sensors.poll(t)
            t += 10
        faults = [d for k, d in events if k == "sensor_fault"]
        assert [d["state"] for d in faults] == ["lost"] and faults[0]["reason"]
        fridge.modem.silent = False  # type: ignore[union-attr]  # plugged back
        sensors.poll(t)
        assert [d["state"] for k, d in events if k == "sensor_fault"] == ["lost", "back"]
        kept = outbox.read("SELECT count(*) FROM sensor_readings WHERE sensor = 'fridge-1'")
        assert kept[0][0] > 40  # the raw series stays on the box
        sensors.poll(t + 7200)  # two hours on: older than keep_raw_h
        left = outbox.read("SELECT min(at) FROM sensor_readings")[0][0]
        assert left >= t + 7200 - 3600
    finally:
        sensors.stop()
        outbox.close()


def test_the_installers_check_reads_each_sensor(tmp_path: Path, fridge: VirtualSensor) -> None:
    from click.testing import CliRunner

    from edge.cli import main

    conf = tmp_path / "edge.toml"
    conf.write_text(
        f'device = "k1"\nsite = "s1"\ndata_dir = "{tmp_path}"\n'
        f'[[sensors]]\nname = "fridge-1"\nkind = "fridge"\nport = "{fridge.link}"\n'
        'profile = "xy_md02"\n'
        f'[[sensors]]\nname = "freezer-1"\nkind = "freezer"\nport = "{tmp_path}/ttyNone"\n'
        'profile = "pt100_rs485"\n',
        encoding="utf-8",
    )
    fridge.set(temperature=9.5)
    got = CliRunner().invoke(main, ["sensors", "check", "--json", "--config", str(conf)])
    assert got.exit_code == 1, got.output  # the freezer is not there
    rows = {r["sensor"]: r for r in json.loads(got.output)}
    assert rows["fridge-1"]["temperature"] == 9.5 and rows["fridge-1"]["state"] == "out of range"
    assert rows["freezer-1"]["state"].startswith("error: cannot open")


def test_the_hall_screen_shows_the_fridge_and_its_day(
    tmp_path: Path, fridge: VirtualSensor, mosquitto: Mosquitto, browser: Any
) -> None:
    port = free_port()
    sensor = {"name": "fridge-1", "kind": "fridge", "port": str(fridge.link),
              "profile": "xy_md02", "poll_s": 0.3, "hold_s": 1}  # fmt: skip
    agent = Agent(edge_config(tmp_path, mosquitto.url, sensors=[sensor], display={"port": port}))
    agent.start()
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        page.goto(f"http://127.0.0.1:{port}/hall")
        li = "#sensors li[data-sensor='fridge-1']"
        page.wait_for_selector(f"{li} svg polyline", state="attached")
        assert "4.0℃" in page.inner_text(li) and "正常" in page.inner_text(li)
        fridge.set(temperature=11.5)  # the door left open, past its hold time
        page.wait_for_selector(f"{li}.bad", timeout=15_000)
        assert "超出范围" in page.inner_text(li)
        page.wait_for_function(  # the day's plot draws the readings
            f"document.querySelector(\"{li} polyline\").getAttribute('points').length > 0"
        )
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "hall-sensors.png"))
    finally:
        page.close()
        agent.stop()
    kinds = [e["kind"] for e in Outbox(tmp_path / "kitchen-1" / "outbox.db", "kitchen-1",
                                       "canteen-001").recent(500)]  # fmt: skip
    assert "sensor_excursion" in kinds


def test_an_alert_raised_before_a_restart_clears_after_it(
    tmp_path: Path, fridge: VirtualSensor
) -> None:
    outbox = Outbox(tmp_path / "outbox.db", "k1", "s1", OutboxSettings(), clock=lambda: T0)
    events: list[tuple[str, dict[str, Any]]] = []
    cfg = SensorSettings(name="fridge-1", kind="fridge", port=str(fridge.link),
                         profile="xy_md02", hold_s=0, silent_s=1)  # fmt: skip
    fridge.set(temperature=12.0)
    first = Sensors([cfg], outbox, lambda k, d: events.append((k, d)), clock=lambda: T0)
    first.poll(T0)
    first.stop()  # the agent restarts (an update), the fridge still warm
    assert [d["state"] for k, d in events if k == "sensor_excursion"] == ["raised"]
    fridge.set(temperature=4.5)
    again = Sensors([cfg], outbox, lambda k, d: events.append((k, d)), clock=lambda: T0)
    try:
        again.poll(T0 + 60)
        assert [d["state"] for k, d in events if k == "sensor_excursion"] == ["raised", "cleared"]
    finally:
        again.stop()
        outbox.close()
