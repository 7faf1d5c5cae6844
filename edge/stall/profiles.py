"""Scale and printer profiles: TOML files in ``firmware_profiles/``, validated here.

A scale profile says how a scale talks (serial settings, continuous or polled), how to find a
frame in the byte stream (start and end bytes, a regular expression with named groups), what
the groups mean (value, sign, unit, stable / net / overload flags, decimal places) and how the
frame is checked (none, XOR, two's complement, XOR as two ASCII hex digits). Adding a scale is
adding a file; see docs/scales.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.assets import profiles_dir
from shared.config import StrictModel, load


def to_bytes(text: str) -> bytes:
    """Profile strings hold bytes as Latin-1 text (TOML "\\u0002" is STX)."""
    return text.encode("latin-1")


class SerialSettings(StrictModel):
    """Serial line settings of the scale."""

    baudrate: int = Field(default=9600, description="Bits per second.")
    bytesize: Literal[7, 8] = Field(default=8, description="Data bits.")
    parity: Literal["N", "E", "O"] = Field(default="N", description="Parity: N, E or O.")
    stopbits: Literal[1, 2] = Field(default=1, description="Stop bits.")


class PollSettings(StrictModel):
    """For scales that answer a request instead of sending continuously."""

    request: str = Field(description="Bytes sent to ask for a weight (Latin-1 text).")
    interval_s: float = Field(default=0.2, gt=0, description="Seconds between requests.")


class FlagSpec(StrictModel):
    """How a flag is read from a named group: by text values, or by a bit mask on its byte."""

    group: str = Field(description="Named group of the pattern.")
    values: list[str] = Field(default_factory=list, description="Texts meaning the flag is set.")
    mask: int | None = Field(default=None, ge=1, le=255, description="Bits meaning it is set.")
    bits: int | None = Field(
        default=None,
        ge=0,
        le=255,
        description="With mask: set only when the masked bits equal these (else: any of them).",
    )
    invert: bool = Field(default=False, description="The flag is set when the test fails.")
    default: bool = Field(default=False, description="Value when the group did not match.")


class ExponentSpec(StrictModel):
    """A power of ten read from a group: an ASCII digit of decimals, or bits through a table."""

    group: str = Field(description="Named group of the pattern.")
    mask: int | None = Field(default=None, description="Bits of the group's byte to look up.")
    table: dict[str, int] = Field(
        default_factory=dict, description="Masked value (decimal text) -> power of ten."
    )


class UnitTable(StrictModel):
    """The unit read from bits of a group's byte (Toledo's status word C)."""

    group: str = Field(description="Named group of the pattern.")
    mask: int = Field(ge=1, le=255, description="Bits of the group's byte to look up.")
    table: dict[str, str] = Field(
        description="Masked value (decimal text) -> unit; '' means: as the kg flag or the "
        "unit field says."
    )


class FrameSpec(StrictModel):
    """Where frames start and end, and what they look like."""

    start: str = Field(default="", description="Bytes opening a frame; empty when none.")
    end: str = Field(description="Bytes closing a frame, e.g. CR LF.")
    also_end: list[str] = Field(
        default_factory=list,
        description="Other terminators the maker allows (A&D: 'CR or CR LF'); the earliest "
        "in the stream closes the frame.",
    )
    head: str = Field(
        default="",
        description="Without start bytes: where a frame may begin in a line (a regular "
        "expression, e.g. '(ST|US|OL),'), so that a frame behind noise on the same line is "
        "found. Empty: any position after a byte that cannot be part of a frame.",
    )
    ignore: list[str] = Field(
        default_factory=list,
        description="Regular expressions for valid replies that carry no weight "
        "(acknowledgements, echoes, counts): not an error, never a weight.",
    )
    max_length: int = Field(default=64, ge=4, le=1024, description="Longest frame, bytes.")
    patterns: list[str] = Field(
        min_length=1,
        description="Regular expressions (Latin-1) for the frame body, tried in order. Named "
        "groups: value, sign, unit, and any used by the flags.",
    )

    @field_validator("patterns", "ignore")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        for p in v:
            re.compile(to_bytes(p))
        return v


class ChecksumSpec(StrictModel):
    """The frame check."""

    kind: Literal["none", "xor", "twos_complement", "xor_hex"] = Field(
        default="none",
        description="none, xor (one byte), twos_complement (one byte, of the "
        "sum), xor_hex (XOR as two ASCII hex digits).",
    )
    position: Literal["before_end", "after_end"] = Field(
        default="before_end", description="Where the check bytes sit."
    )
    include_start: bool = Field(default=False, description="The check covers the start bytes.")
    include_end: bool = Field(default=False, description="The check covers the end bytes.")
    mask: int = Field(default=0xFF, description="Mask applied to the computed check.")
    optional: bool = Field(
        default=False,
        description="after_end only: the scale may be set to send no check (Toledo's is "
        "optional); a frame followed straight by the next start has none.",
    )

    @property
    def length(self) -> int:
        return {"none": 0, "xor": 1, "twos_complement": 1, "xor_hex": 2}[self.kind]


class Fields(StrictModel):
    """What the groups mean."""

    unit: Literal["mg", "g", "kg", "t", "lb", "oz"] = Field(
        default="kg", description="Unit when the frame has no `unit` group."
    )
    stable: FlagSpec | None = Field(
        default=None, description="Stable flag; absent means every frame counts as stable."
    )
    net: FlagSpec | None = Field(default=None, description="Net (tare subtracted) flag.")
    overload: FlagSpec | None = Field(default=None, description="Over capacity flag.")
    underload: FlagSpec | None = Field(
        default=None, description="Under zero / below range flag (never sold, shown negative)."
    )
    not_weight: list[FlagSpec] = Field(
        default_factory=list,
        description="Any of these set: the frame is valid but is no sale weight (a tare or "
        "held value, a count, a scale not zeroed since power-up).",
    )
    negative: FlagSpec | None = Field(default=None, description="Negative flag (no sign group).")
    decimals: ExponentSpec | None = Field(
        default=None, description="Decimal places when the value has no decimal point."
    )
    kg_flag: FlagSpec | None = Field(
        default=None, description="When present: set means kg, clear means lb (status bits)."
    )
    unit_table: UnitTable | None = Field(
        default=None, description="The unit from status bits, before kg_flag and unit."
    )


class Stability(StrictModel):
    """When a weight counts as stable."""

    frames: int = Field(default=3, ge=1, le=100, description="Consecutive stable frames needed.")
    tolerance_g: float = Field(default=2.0, ge=0, description="Largest spread among them, g.")
    zero_g: float = Field(default=5.0, ge=0, description="Weights below this count as zero.")


class ScaleProfile(StrictModel):
    """One scale protocol."""

    title: str = Field(description="Human name of the protocol.")
    source: str = Field(description="Where the format comes from (manual or capture).")
    serial: SerialSettings = Field(default_factory=SerialSettings, description="Line settings.")
    poll: PollSettings | None = Field(default=None, description="Absent: continuous output.")
    rate_hz: float = Field(default=10, gt=0, description="Frames per second sent (continuous).")
    frame: FrameSpec = Field(description="Framing.")
    fields: Fields = Field(default_factory=Fields, description="Meaning of the groups.")
    checksum: ChecksumSpec = Field(default_factory=ChecksumSpec, description="Frame check.")
    stability: Stability = Field(default_factory=Stability, description="Stable weight rule.")
    examples: list[str] = Field(
        default_factory=list, description="Frames from the manual (Latin-1), checked by tests."
    )

    @model_validator(mode="after")
    def _groups_exist(self) -> ScaleProfile:
        groups: set[str] = set()
        for p in self.frame.patterns:
            groups |= set(re.compile(to_bytes(p)).groupindex)
        f = self.fields
        specs = [f.stable, f.net, f.overload, f.underload, f.negative, f.decimals, f.kg_flag]
        for spec in [*specs, *f.not_weight, f.unit_table]:
            if spec is not None and spec.group not in groups:
                raise ValueError(f"group {spec.group!r} is not in any pattern")
        return self


def profile_names(kind: str = "scales") -> list[str]:
    return sorted(p.stem for p in (profiles_dir() / kind).glob("*.toml"))


def load_scale_profile(name: str) -> ScaleProfile:
    """A profile by name (file stem in firmware_profiles/scales) or by path."""
    path = Path(name)
    if not path.suffix:
        path = profiles_dir() / "scales" / f"{name}.toml"
    if not path.exists():
        raise FileNotFoundError(f"no scale profile {name!r}; known: {', '.join(profile_names())}")
    return load(path, ScaleProfile)
