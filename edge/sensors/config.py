"""``[[sensors]]`` in edge.toml: each sensor, its bus, and the rules for what it measures.
The ranges default by kind, from the catering operating guidance (餐饮服务食品安全操作规范):
chilled 0–8 °C, frozen -12 °C or colder; a disinfection cabinet proves a run by staying at
120 °C or more for 10 minutes (infrared cabinets; set 100 °C for steam)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from shared.config import StrictModel

Kind = Literal["fridge", "freezer", "cold_room", "disinfection_cabinet", "room"]
RANGES: dict[str, tuple[float | None, float | None]] = {
    "fridge": (0.0, 8.0),
    "cold_room": (0.0, 8.0),
    "freezer": (None, -12.0),
    "disinfection_cabinet": (None, None),
    "room": (None, None),
}


class SensorSettings(StrictModel):
    """One sensor on an RS-485 bus (sensors on one port share the bus, each at its address)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="Its name (fridge-1).")
    kind: Kind = Field(description="fridge, freezer, cold_room, disinfection_cabinet or room.")
    port: str = Field(description="The serial port (/dev/serial/by-id/...).")
    profile: str = Field(description="Register map in firmware_profiles/sensors (xy_md02).")
    device_id: int = Field(default=1, ge=1, le=247, description="Its Modbus address.")
    baudrate: int | None = Field(default=None, description="Default: the profile's.")
    parity: Literal["N", "E", "O"] | None = Field(default=None, description="Default: profile's.")
    poll_s: float = Field(default=10, ge=0.2, le=300, description="Seconds between reads.")
    low_c: float | None = Field(default=None, description="Lowest allowed (default: by kind).")
    high_c: float | None = Field(default=None, description="Highest allowed (default: by kind).")
    hold_s: float = Field(
        default=900, ge=0, description="Out of range this long in a row before it is an alert "
        "(a door opened briefly is not)."
    )  # fmt: skip
    silent_s: float = Field(
        default=120, ge=1, description="No good reading this long: the sensor is lost (a fault)."
    )
    cycle_min_c: float = Field(
        default=120, description="A disinfection run counts from this temperature (°C)."
    )
    cycle_hold_s: float = Field(
        default=600, ge=1, description="A disinfection run is proven when held this long."
    )
    keep_raw_h: float = Field(
        default=72, ge=1, le=24 * 90, description="Its raw readings are kept on the box this "
        "long (the cloud gets per-minute summaries)."
    )  # fmt: skip

    @model_validator(mode="after")
    def _range(self) -> SensorSettings:
        low, high = RANGES[self.kind]
        self.low_c = low if self.low_c is None else self.low_c
        self.high_c = high if self.high_c is None else self.high_c
        if self.low_c is not None and self.high_c is not None and self.low_c >= self.high_c:
            raise ValueError(f"sensor {self.name}: low_c must be below high_c")
        return self
