"""Sensors on a controlled clock: a register map decoding whatever a wire gives, the excursion
rule (a door opened briefly is not an alert, a fridge warm for its hold time is), a sensor gone
silent and back, a disinfection run proven or not, per-minute summaries; and the collector's
alerts from the events the box sends."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.config import EdgeConfig
from edge.sensors.config import SensorSettings
from edge.sensors.profiles import SensorError, load_sensor_profile, sensor_profile_names
from edge.sensors.rules import Cycle, Excursion, Minutes, Silence
from shared.kinds import validate_data

T0 = 1_800_000_000.0


def test_every_shipped_profile_loads() -> None:
    names = sensor_profile_names()
    assert {"xy_md02", "renke_rs_ws", "pt100_rs485"} <= set(names)
    md02 = load_sensor_profile("xy_md02")
    assert (md02.function, md02.first, md02.count) == (4, 1, 2)
    assert md02.decode([0xFFD3, 612]) == {"temperature": -4.5, "humidity": 61.2}
    with pytest.raises(FileNotFoundError, match="known: "):
        load_sensor_profile("nothing")


@given(st.sampled_from(["xy_md02", "renke_rs_ws", "pt100_rs485"]),
       st.lists(st.integers(-(2**20), 2**20), max_size=20))  # fmt: skip
def test_any_registers_decode_to_plausible_values_or_a_clear_error(
    name: str, registers: list[int]
) -> None:
    profile = load_sensor_profile(name)
    try:
        values = profile.decode(registers)
    except SensorError as exc:
        assert str(exc)
        return
    assert -60 <= values["temperature"] <= 400
    assert 0 <= values.get("humidity", 50) <= 100


def test_a_door_opened_briefly_is_no_alert_a_warm_fridge_is() -> None:
    ex = Excursion(low=0.0, high=8.0, hold_s=900)
    assert ex.feed(4.0, T0) is None
    assert ex.feed(11.0, T0 + 10) is None  # the door opens
    assert ex.feed(9.5, T0 + 70) is None
    assert ex.feed(5.0, T0 + 130) is None  # and closes: nothing to say
    assert ex.feed(9.0, T0 + 200) is None  # left open
    assert ex.feed(12.5, T0 + 800) is None
    assert ex.feed(10.0, T0 + 1099) is None
    assert ex.feed(10.0, T0 + 1100) == "raised" and ex.worst == 12.5
    assert ex.feed(11.0, T0 + 1200) is None  # raised once
    assert ex.feed(7.9, T0 + 1300) == "cleared"
    freezer = Excursion(low=None, high=-12.0, hold_s=0)
    assert freezer.feed(-20.0, T0) is None and freezer.feed(-5.0, T0 + 1) == "raised"


def test_a_silent_sensor_is_lost_once_and_found_again() -> None:
    s = Silence(silent_s=120, last_ok=T0)
    assert not s.failed(T0 + 60)
    assert s.failed(T0 + 121) and not s.failed(T0 + 200)  # said once
    assert s.ok(T0 + 210) and not s.ok(T0 + 220)


def test_a_disinfection_run_is_proven_by_its_curve() -> None:
    c = Cycle(min_c=120, hold_s=600)
    assert c.feed(25, T0) is None and c.feed(118, T0 + 300) is None
    assert c.feed(121, T0 + 360) is None and c.feed(126, T0 + 700) is None
    assert c.feed(122, T0 + 1000) is None
    run = c.feed(90, T0 + 1010)  # from the first hot reading to the last one seen
    assert run is not None and run["proven"] and run["held_s"] == 640 and run["peak_c"] == 126
    assert c.feed(122, T0 + 2000) is None
    short = c.feed(80, T0 + 2300)
    assert short is not None and not short["proven"]
    validate_data("disinfection_cycle", {"sensor": "cab-1", **short})


def test_readings_are_summarised_per_minute() -> None:
    m = Minutes()
    start = T0 - T0 % 60
    assert m.add({"temperature": 4.0, "humidity": 60.0}, start + 1) is None
    assert m.add({"temperature": 6.0, "humidity": 62.0}, start + 31) is None
    done = m.add({"temperature": 5.0, "humidity": 61.0}, start + 61)
    assert done is not None
    assert done["values"]["temperature"] == {"min": 4.0, "max": 6.0, "mean": 5.0, "n": 2}
    validate_data("sensor_minute", {"sensor": "fridge-1", "kind": "fridge", **done})


def test_ranges_default_by_kind_and_a_bad_sensor_config_is_refused() -> None:
    base = {"port": "/dev/ttyUSB0", "profile": "xy_md02"}
    fridge = SensorSettings(name="f", kind="fridge", **base)
    assert (fridge.low_c, fridge.high_c) == (0.0, 8.0)
    assert SensorSettings(name="z", kind="freezer", **base).high_c == -12.0
    with pytest.raises(ValidationError, match="low_c must be below high_c"):
        SensorSettings(name="f", kind="room", low_c=5, high_c=2, **base)
    with pytest.raises(ValidationError, match="two sensors with one name"):
        EdgeConfig(device="k1", site="s1", sensors=[fridge, fridge])
    with pytest.raises(ValidationError):
        SensorSettings(name="a b<", kind="fridge", **base)  # names reach pages and titles


def test_the_collector_raises_and_closes_alerts_from_the_sensors_events(tmp_path: Path) -> None:
    from cloud.alerts.engine import AlertEngine
    from cloud.config import AlertSettings
    from cloud.store import Store
    from tests.conftest import register
    from tests.test_alerts_engine import ev, feed

    store = Store(tmp_path / "c.db", tmp_path / "snaps", engine=AlertEngine(AlertSettings()))
    store.sites.set("s1", "xianan")
    register(store, "k1", "s1", district="xianan")
    out = {"sensor": "fridge-1", "kind": "fridge", "value": 11.0, "worst": 12.5, "low": 0.0,
           "high": 8.0, "since": "2027-01-15T08:00:00Z"}  # fmt: skip
    lost = {"sensor": "fridge-1", "state": "lost", "reason": "no response"}
    short = {"sensor": "cab-1", "began": "2027-01-15T08:00:00Z", "held_s": 300.0,
             "peak_c": 124.0, "min_c": 120.0, "hold_s": 600.0, "proven": False}  # fmt: skip
    proven = {**short, "held_s": 700.0, "proven": True}
    feed(store, [ev("sensor_excursion", {**out, "state": "raised"}, 1),
                 ev("sensor_fault", lost, 2), ev("disinfection_cycle", short, 3),
                 ev("disinfection_cycle", proven, 4)])  # fmt: skip
    alerts = {a["type"]: a for a in store.alerts.list()}
    assert set(alerts) == {"sensor_excursion", "sensor_fault", "disinfection_incomplete"}
    assert "11.0 °C, outside 0.0..8.0 °C" in alerts["sensor_excursion"]["title"]
    assert "held 300 s" in alerts["disinfection_incomplete"]["title"]
    feed(store, [ev("sensor_excursion", {**out, "state": "cleared", "value": 5.0}, 5),
                 ev("sensor_fault", {**lost, "state": "back", "reason": ""}, 6)])  # fmt: skip
    states = {a["type"]: a["state"] for a in store.alerts.list()}
    assert states["sensor_excursion"] == states["sensor_fault"] == "closed"
    assert states["disinfection_incomplete"] == "open"  # the kitchen's to answer
    store.close()


def test_the_console_site_page_plots_a_sensors_day(tmp_path: Path) -> None:
    import re

    from cloud.console import readings
    from cloud.store import Store
    from tests.conftest import register
    from tests.test_alerts_engine import ev, feed

    store = Store(tmp_path / "c.db", tmp_path / "snaps")
    store.sites.set("s1", "xianan")
    register(store, "k1", "s1", district="xianan")
    from datetime import datetime, timedelta, timezone

    from edge.sensors.rules import iso

    china = timezone(timedelta(hours=8))  # noon today, far from the day's edges
    now = datetime.now(china).replace(hour=12, minute=0, second=0, microsecond=0).timestamp()
    minutes = [
        {"sensor": "fridge-1", "kind": "fridge", "minute": iso(now - 120 + i * 60),
         "values": {"temperature": {"min": t, "max": t, "mean": t, "n": 6}}}
        for i, t in enumerate((3.9, 4.4, 5.0))
    ]  # fmt: skip
    for i, m in enumerate(minutes):
        feed(store, [ev("sensor_minute", m, i + 1)], now - 120 + i * 60)
    got = readings.readings(store.db, "s1", now + 60)
    assert [s["sensor"] for s in got] == ["fridge-1"] and len(got[0]["points"]) == 3
    page = readings.box(got)
    assert "5.0 °C" in page
    points = re.search(r"<polyline points='([^']*)'", page)
    assert points is not None and len(points.group(1).split()) == 3
    assert readings.box(readings.readings(store.db, "elsewhere", now)) == ""
    store.close()


@given(st.lists(st.tuples(st.floats(), st.floats()), max_size=50),
       st.none() | st.floats(-100, 100), st.text(max_size=50))  # fmt: skip
def test_any_readings_draw_a_well_formed_plot(
    points: list[tuple[float, float]], high: float | None, label: str
) -> None:
    import xml.etree.ElementTree as ET

    from shared.sparkline import sparkline

    svg = sparkline([(t, v) for t, v in points if t == t], T0, None, high, label)
    ET.fromstring(svg)  # well formed, whatever the label
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
