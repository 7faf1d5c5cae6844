"""``shian-edge sensors``: the installer's check of each configured sensor, the profiles, and
a virtual sensor to try a box without one (docs/sensors.md)."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import click

from edge.config import EdgeConfig
from shared.clikit import Decorator, json_option, load_config, print_rows


def register(main: click.Group, config_option: Decorator) -> None:
    @main.group()
    def sensors() -> None:
        """RS-485 Modbus sensors: check them, list the profiles, simulate one.

        Example: shian-edge sensors check --config /etc/shian/edge.toml
        """

    @sensors.command("check")
    @config_option
    @json_option
    def sensors_check(config_path: Path, as_json: bool) -> None:
        """Read each configured sensor once: its values and whether they are in range, or the
        error (no answer, a CRC error, a port that is not there). Exits 1 if any fails.

        Example: shian-edge sensors check --config /etc/shian/edge.toml
        """
        from edge.sensors.modbus import Bus
        from edge.sensors.profiles import SensorError, load_sensor_profile

        cfg = load_config(config_path, EdgeConfig)
        rows, failed = [], False
        for s in cfg.sensors:
            profile = load_sensor_profile(s.profile)
            bus = Bus(s.port, s.baudrate or profile.baudrate, s.parity or profile.parity)
            try:
                values: dict[str, Any] = bus.read(profile, s.device_id)
                t = values.get("temperature")
                out = t is not None and ((s.low_c is not None and t < s.low_c)
                                         or (s.high_c is not None and t > s.high_c))  # fmt: skip
                rows.append({"sensor": s.name, "kind": s.kind, **values,
                             "state": "out of range" if out else "ok"})  # fmt: skip
            except SensorError as exc:
                failed = True
                rows.append({"sensor": s.name, "kind": s.kind, "state": f"error: {exc}"})
            finally:
                bus.close()
        if not rows:
            click.echo("no [[sensors]] in this config")
        print_rows(rows, ["sensor", "kind", "temperature", "humidity", "state"], as_json)
        sys.exit(1 if failed else 0)

    @sensors.command("profiles")
    @json_option
    def sensors_profiles(as_json: bool) -> None:
        """List the sensor profiles in firmware_profiles/sensors.

        Example: shian-edge sensors profiles
        """
        from edge.sensors.profiles import load_sensor_profile, sensor_profile_names

        rows = []
        for name in sensor_profile_names():
            p = load_sensor_profile(name)
            values = ", ".join(f"{v.quantity}@{v.address}" for v in p.values)
            rows.append({"name": name, "serial": f"{p.baudrate} 8{p.parity}1",
                         "function": p.function, "values": values})  # fmt: skip
        print_rows(rows, ["name", "serial", "function", "values"], as_json)

    @sensors.command("simulate")
    @click.option("--link", type=click.Path(path_type=Path), required=True,
                  help="The path the box reads (a symlink to a pseudo-terminal).")  # fmt: skip
    @click.option("--profile", "profile_name", default="xy_md02", show_default=True)
    @click.option("--device-id", default=1, show_default=True, help="Its Modbus address.")
    @click.option("--temperature", default=4.0, show_default=True)
    @click.option("--humidity", default=60.0, show_default=True)
    def sensors_simulate(link: Path, profile_name: str, device_id: int, temperature: float,
                         humidity: float) -> None:  # fmt: skip
        """Serve a virtual sensor (pymodbus's Modbus RTU server on a pseudo-terminal) until
        Ctrl-C; type a temperature and Enter to change its reading.

        Example: shian-edge sensors simulate --link /tmp/ttyFridge --temperature 3.5
        """
        from edge.sensors.profiles import load_sensor_profile
        from edge.sensors.virtual import VirtualSensor

        sensor = VirtualSensor(link, load_sensor_profile(profile_name), device_id)
        sensor.start(temperature=temperature, humidity=humidity)
        click.echo(json.dumps({"link": str(link), "profile": profile_name,
                               "temperature": temperature}))  # fmt: skip
        stop = threading.Event()
        try:
            for line in sys.stdin:
                try:
                    sensor.set(temperature=float(line.strip()))
                except ValueError:
                    click.echo("a temperature, in °C", err=True)
            stop.wait()  # stdin closed: serve until stopped
        except KeyboardInterrupt:
            pass
        finally:
            sensor.stop()
