"""Sensor profiles: a transmitter's register map as data (``firmware_profiles/sensors``).

A profile names the function that reads it (03 holding or 04 input registers), the serial
settings it ships with, and each value: its register, its scale and whether it is signed. The
registers come off a wire from a device nobody here controls: :meth:`SensorProfile.decode`
turns them into values or a :class:`SensorError` that says why, never anything else.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.assets import profiles_dir

PLAUSIBLE = {"temperature": (-60.0, 400.0), "humidity": (0.0, 100.0)}
"""What a reading can be at all; outside it, the sensor or its wiring is wrong."""


class SensorError(Exception):
    """A read that gave no usable value: timeout, CRC error, an exception code, nonsense."""


class SensorValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Literal["temperature", "humidity"] = Field(description="What it measures.")
    address: int = Field(ge=0, le=65535, description="Its register address (0-based).")
    scale: float = Field(gt=0, description="Units per count (0.1: tenths of a degree).")
    signed: bool = Field(description="Two's complement (temperatures below zero).")


class SensorProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(max_length=200, description="What device this is.")
    baudrate: int = Field(description="As the device ships (the box's config may override).")
    parity: Literal["N", "E", "O"] = Field(default="N", description="As the device ships.")
    function: Literal[3, 4] = Field(description="03: holding registers; 04: input registers.")
    values: list[SensorValue] = Field(min_length=1, max_length=8)

    @model_validator(mode="after")
    def _one_block(self) -> SensorProfile:
        if self.count > 16:
            raise ValueError("the values must lie within 16 registers (one read)")
        if len({v.quantity for v in self.values}) != len(self.values):
            raise ValueError("a quantity twice")
        return self

    @property
    def first(self) -> int:
        return min(v.address for v in self.values)

    @property
    def count(self) -> int:
        return max(v.address for v in self.values) - self.first + 1

    def decode(self, registers: list[int]) -> dict[str, float]:
        """The values from the registers of one read, or SensorError."""
        if len(registers) != self.count:
            raise SensorError(f"{len(registers)} registers for a map of {self.count}")
        out: dict[str, float] = {}
        for v in self.values:
            raw = registers[v.address - self.first]
            if not 0 <= raw <= 0xFFFF:
                raise SensorError(f"register {v.address} holds {raw}, not 16 bits")
            if v.signed and raw >= 0x8000:
                raw -= 0x10000
            value = round(raw * v.scale, 3)
            low, high = PLAUSIBLE[v.quantity]
            if not low <= value <= high:
                raise SensorError(f"{v.quantity} {value} is not plausible (wiring, or a fault)")
            out[v.quantity] = value
        return out


def sensor_profile_names() -> list[str]:
    return sorted(p.stem for p in (profiles_dir() / "sensors").glob("*.toml"))


def load_sensor_profile(name: str) -> SensorProfile:
    """A profile by name (file stem in firmware_profiles/sensors) or by path."""
    path = Path(name)
    if not path.suffix:
        path = profiles_dir() / "sensors" / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sensor_profile_names())
        raise FileNotFoundError(f"no sensor profile {name!r}; known: {known}")
    return SensorProfile.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
