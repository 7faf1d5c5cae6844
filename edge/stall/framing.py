"""Find and decode scale frames in a byte stream, as a scale profile describes them.

The decoder is pure (bytes in, readings out) so the serial reader, the ``scale decode`` command,
the tests and the benchmark share it. It never raises on input: garbage, a partial frame, a
frame longer than ``max_length`` or a failed check each give a reading with ``error`` set and
the decoder resynchronises on the next start (or end) bytes. A frame whose check fails never
yields a weight. Without start bytes a frame is a line; noise before it on the same line is
reported as its own error and the frame behind it is still found (``frame.head``). A valid
reply that carries no sale weight (a tare value, an acknowledgement) is ``other``: no error,
never a weight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import Any

from edge.stall.profiles import ChecksumSpec, ExponentSpec, FlagSpec, ScaleProfile, to_bytes

GRAMS_PER = {
    "mg": Decimal("0.001"),
    "g": Decimal(1),
    "kg": Decimal(1000),
    "t": Decimal(1_000_000),
    "lb": Decimal("453.59237"),
    "oz": Decimal("28.349523125"),
}
_LEAD = b"\r\n\x00\xff"
_FRAMEY = re.compile(rb"[0-9A-Za-z+\-.,]")
"""A byte that may be part of a frame: a frame without a head cannot begin right after one."""
"""Bytes that may come before a frame on a line (a power-up NUL, the LF of a CR LF)."""


@dataclass(frozen=True)
class Reading:
    """One frame: a weight with its flags, a valid frame without a weight (``other``), or an
    error with the reason."""

    raw: bytes
    grams: float | None = None
    stable: bool = False
    net: bool = False
    overload: bool = False
    underload: bool = False
    other: bool = False
    error: str | None = None

    @property
    def checksum_failed(self) -> bool:
        return bool(self.error and self.error.startswith("checksum"))

    def as_json(self) -> dict[str, Any]:
        raw = self.raw.decode("latin-1")
        if self.error:
            return {"error": self.error, "raw": raw}
        if self.other:
            return {"other": True, "raw": raw}
        return {
            "grams": self.grams,
            "stable": self.stable,
            "net": self.net,
            "overload": self.overload,
            "underload": self.underload,
            "raw": raw,
        }


def compute_check(spec: ChecksumSpec, covered: bytes) -> bytes:
    if spec.kind == "none":
        return b""
    if spec.kind in ("xor", "xor_hex"):
        value = reduce(lambda a, b: a ^ b, covered, 0) & spec.mask
        return bytes([value]) if spec.kind == "xor" else b"%02X" % value
    return bytes([(-sum(covered)) & 0xFF & spec.mask])  # twos_complement


class FrameDecoder:
    def __init__(self, profile: ScaleProfile) -> None:
        self.p = profile
        f = profile.frame
        self.start = to_bytes(f.start)
        self.ends = sorted({to_bytes(e) for e in [f.end, *f.also_end]}, key=len, reverse=True)
        self.patterns = [re.compile(to_bytes(x), re.S) for x in f.patterns]
        self.ignore = [re.compile(to_bytes(x), re.S) for x in f.ignore]
        self.head = re.compile(to_bytes(f.head)) if f.head else None
        self.ck = profile.checksum
        self.max_len = f.max_length
        self.buf = bytearray()

    # -- framing -------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Reading]:
        self.buf += data
        out: list[Reading] = []
        while True:
            readings = self._next()
            if readings is None:
                return out
            out += readings

    def flush(self) -> list[Reading]:
        """At the end of a stream: what is left is a partial frame (if not only blanks), or
        a last frame whose optional check was not sent."""
        rest, self.buf = bytes(self.buf), bytearray()
        if self.ck.optional and self.start and rest.startswith(self.start):
            end = self._find_end(rest, len(self.start))
            if end is not None and end[0] + end[1] == len(rest):
                return [self._decode_frame(rest, len(self.start), end[0], checked=False)]
        return [Reading(rest, error="partial frame at end of input")] if rest.strip() else []

    def _find_end(self, buf: bytes | bytearray, at: int) -> tuple[int, int] | None:
        """(position, length) of the earliest terminator at or after ``at``."""
        found = [(i, len(e)) for e in self.ends if (i := buf.find(e, at)) >= 0]
        return min(found, key=lambda x: (x[0], -x[1])) if found else None

    def _next(self) -> list[Reading] | None:
        buf, start = self.buf, self.start
        body_from = 0
        if start:
            i = buf.find(start)
            if i < 0:
                keep = len(start) - 1
                if len(buf) > self.max_len:
                    junk = bytes(buf[: len(buf) - keep])
                    del buf[: len(buf) - keep]
                    return [Reading(junk, error="garbage: no frame start")]
                return None
            if i > 0:
                junk = bytes(buf[:i])
                del buf[:i]
                if junk.strip(_LEAD + b" "):
                    return [Reading(junk, error="garbage before frame start")]
            body_from = len(start)
        end = self._find_end(buf, body_from)
        nxt = buf.find(start, len(start)) if start else -1
        if end is None or (0 <= nxt < end[0]):
            if nxt >= 0:
                junk = bytes(buf[:nxt])
                del buf[:nxt]
                return [Reading(junk, error="partial frame (a new frame started)")]
            if len(buf) > self.max_len:
                cut = len(start) if start else len(buf)
                junk = bytes(buf[:cut])
                del buf[:cut]
                return [Reading(junk, error=f"no frame end within {self.max_len} bytes")]
            return None
        j, frame_end = end[0], end[0] + end[1]
        after, checked = (self.ck.length if self.ck.position == "after_end" else 0), True
        if after and len(buf) < frame_end + after:
            return None
        if after and self.ck.optional and start and buf[frame_end:].startswith(start):
            covered = (start if self.ck.include_start else b"") + bytes(buf[body_from:j])
            covered += bytes(buf[j:frame_end]) if self.ck.include_end else b""
            if bytes(buf[frame_end : frame_end + after]) != compute_check(self.ck, covered):
                after, checked = 0, False  # the next frame starts at once: no check was sent
        frame = bytes(buf[: frame_end + after])
        del buf[: frame_end + after]
        if frame.strip(_LEAD + b" ") == b"":
            return []  # an empty line between frames: skipped, not an error
        if start:
            return [self._decode_frame(frame, body_from, j, checked)]
        return self._line(frame, j)

    def _line(self, frame: bytes, end_at: int) -> list[Reading]:
        """A line of a profile without start bytes: the frame, or noise and then the frame
        found behind it (never a frame made of noise and frame together)."""
        lead = len(frame[:end_at]) - len(frame[:end_at].lstrip(_LEAD))
        first = self._decode_frame(frame[lead:], 0, end_at - lead)
        if not first.error:
            return [first]
        for at in self._heads(frame[lead:end_at]):
            r = self._decode_frame(frame[lead + at :], 0, end_at - lead - at)
            if not r.error:
                junk = frame[lead : lead + at]
                if not junk.strip():  # spaces before a frame: its padding, not noise
                    return [r]
                return [Reading(junk, error="garbage before frame on the same line"), r]
        return [first]

    def _heads(self, line: bytes) -> list[int]:
        """Where a frame may begin in a line: after the first byte."""
        if self.head is not None:
            return [m.start() for m in self.head.finditer(line) if m.start() > 0]
        return [i for i in range(1, len(line)) if not _FRAMEY.fullmatch(line[i - 1 : i])]

    # -- one frame -----------------------------------------------------------------------------
    def _decode_frame(
        self, frame: bytes, body_from: int, end_at: int, checked: bool = True
    ) -> Reading:
        ck = self.ck
        body = frame[body_from:end_at]
        if ck.kind != "none" and checked:
            if ck.position == "before_end":
                body, got = body[: -ck.length], body[-ck.length :]
            else:
                got = frame[-ck.length :]
            covered = (self.start if ck.include_start else b"") + body
            if ck.include_end:  # the terminator as it came (a profile may allow several)
                tail = len(frame) - (ck.length if ck.position == "after_end" else 0)
                covered += frame[end_at:tail]
            want = compute_check(ck, covered)
            if len(body) < 1 or got.upper() != want.upper():
                return Reading(frame, error=f"checksum: got {got.hex()} want {want.hex()}")
        elif ck.kind == "none":
            body = body.rstrip(b"\x00\xff")  # padding a scale sends before the terminator
        return self.decode_body(body, frame)

    def decode_body(self, body: bytes, raw: bytes | None = None) -> Reading:
        raw = body if raw is None else raw
        if any(p.fullmatch(body) for p in self.ignore):
            return Reading(raw, other=True)
        m = next((m for p in self.patterns if (m := p.fullmatch(body))), None)
        if m is None:
            return Reading(raw, error="frame matches no pattern of the profile")
        g = {k: v for k, v in m.groupdict().items() if v is not None}
        f = self.p.fields
        if any(_flag(spec, g) for spec in f.not_weight):
            return Reading(raw, other=True)
        stable = _flag(f.stable, g, default=True)
        net = _flag(f.net, g)
        overload = _flag(f.overload, g)
        underload = _flag(f.underload, g)
        grams: float | None = None
        if "value" in g and not overload and not underload:
            text = g["value"].decode("latin-1").replace(" ", "").replace(",", ".")
            try:
                value = Decimal(text)
            except InvalidOperation:
                return Reading(raw, error=f"bad weight value {text!r}")
            if f.decimals is not None and "." not in text:
                value = value.scaleb(_exponent(f.decimals, g))
            unit = self._unit(g)
            if unit not in GRAMS_PER:
                return Reading(raw, error=f"unknown unit {unit!r}")
            negative = g.get("sign", b"").strip() == b"-" or _flag(f.negative, g)
            grams = float(value * GRAMS_PER[unit]) * (-1 if negative else 1)
        return Reading(
            raw, grams=grams, stable=stable, net=net, overload=overload, underload=underload
        )

    def _unit(self, g: dict[str, bytes]) -> str:
        f = self.p.fields
        if f.unit_table is not None:
            byte = g.get(f.unit_table.group, b"")
            unit = f.unit_table.table.get(str(byte[0] & f.unit_table.mask), "") if byte else ""
            if unit:
                return unit
        if f.kg_flag is not None:
            return "kg" if _flag(f.kg_flag, g) else "lb"
        return g.get("unit", b"").decode("latin-1").strip().lower() or f.unit


def _flag(spec: FlagSpec | None, groups: dict[str, bytes], default: bool = False) -> bool:
    if spec is None:
        return default
    value = groups.get(spec.group)
    if value is None:
        return spec.default
    if spec.mask is not None:
        bits = value[0] & spec.mask if value else 0
        hit = bits == spec.bits if spec.bits is not None else bool(bits)
    else:
        hit = value.decode("latin-1").strip() in spec.values
    return hit != spec.invert


def _exponent(spec: ExponentSpec, groups: dict[str, bytes]) -> int:
    value = groups.get(spec.group, b"")
    if spec.mask is not None:
        key = str(value[0] & spec.mask) if value else ""
        return spec.table.get(key, 0)
    digits = value.decode("latin-1").strip()
    return -int(digits) if digits.isdigit() else 0


def decode_stream(profile: ScaleProfile, data: bytes) -> list[Reading]:
    """Every frame in ``data`` (the ``scale decode`` command)."""
    dec = FrameDecoder(profile)
    return dec.feed(data) + dec.flush()
