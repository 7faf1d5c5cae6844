"""The demo's fridge: an RS-485 temperature and humidity transmitter (profile xy_md02) served by
pymodbus's own Modbus RTU server on a pseudo-terminal, read by the kitchen box. Its door is
left open: the fridge warms past 8 °C, and once that has lasted the hold time (20 s here, 15
minutes in a real kitchen) the box sends an excursion and the collector raises an alert; the
door is shut, it cools, and the alert closes by itself."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloud.demo_setup import KITCHEN, SITES

if TYPE_CHECKING:
    from cloud.store import Store
    from edge.sensors.virtual import VirtualSensor

HOLD_S = 20


class Fridge:
    def __init__(self, workdir: Path) -> None:
        self.link = workdir / "ttyFridge"
        self.sensor: VirtualSensor | None = None
        self.result = ""

    def config(self) -> str:
        """The kitchen box's ``[[sensors]]``."""
        return (
            f'\n[[sensors]]\nname = "fridge-1"\nkind = "fridge"\nport = "{self.link}"\n'
            f'profile = "xy_md02"\npoll_s = 2\nhold_s = {HOLD_S}\nsilent_s = 30\n'
        )

    def start(self) -> None:
        from edge.sensors.profiles import load_sensor_profile
        from edge.sensors.virtual import VirtualSensor

        self.sensor = VirtualSensor(self.link, load_sensor_profile("xy_md02"))
        self.sensor.start(temperature=3.8, humidity=62.0)

    def open_door(self, say: Any) -> None:
        if self.sensor is not None:
            self.sensor.set(temperature=11.6, humidity=78.0)
            say("the kitchen's fridge door is left open: fridge-1 reads 11.6 °C (range 0-8 °C)")

    def story(self, store: Store, say: Any, wait: Any) -> None:
        """Wait for the alert, shut the door, wait for it to close by itself."""
        if self.sensor is None:
            return
        site = SITES[KITCHEN]

        def alert(state: str | None = None) -> dict[str, Any] | None:
            for a in store.alerts.list(district="xianan"):
                mine = a["type"] == "sensor_excursion" and a["site"] == site
                if mine and (state is None or a["state"] == state):
                    return a
            return None

        a = wait(alert, 90, "the fridge's alert")
        say(f"  after {HOLD_S} s out of range: alert [{a['severity']}] {a['title']}")
        self.sensor.set(temperature=4.1, humidity=63.0)
        say("  the door is shut; fridge-1 reads 4.1 °C")
        wait(lambda: alert("closed"), 60, "the fridge's alert to close")
        say("  the alert closed by itself (cleared by the box)")
        self.result = f"door open > {HOLD_S} s -> alert, closed when it cooled"

    def stop(self) -> None:
        if self.sensor is not None:
            self.sensor.stop()
