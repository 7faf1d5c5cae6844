"""Find and decode scale frames in a byte stream, as a scale profile describes them.

The decoder is pure (bytes in, readings out) so the serial reader, the ``scale decode`` command,
the tests and the benchmark share it. It never raises on input: garbage, a partial frame, a
frame longer than ``max_length`` or a failed check each give a reading with ``error`` set and
the decoder resynchronises on the next start (or end) bytes. A frame whose check fails never
yields a weight.
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
    "lb": Decimal("453.59237"),
    "oz": Decimal("28.349523125"),
}


@dataclass(frozen=True)
class Reading:
    """One frame: a weight with its flags, or an error with the reason."""

    raw: bytes
    grams: float | None = None
    stable: bool = False
    net: bool = False
    overload: bool = False
    error: str | None = None

    @property
    def checksum_failed(self) -> bool:
        return bool(self.error and self.error.startswith("checksum"))

    def as_json(self) -> dict[str, Any]:
        raw = self.raw.decode("latin-1")
        if self.error:
            return {"error": self.error, "raw": raw}
        return {
            "grams": self.grams,
            "stable": self.stable,
            "net": self.net,
            "overload": self.overload,
            "raw": raw,
        }


_BLANK = Reading(b"")  # an empty line between frames: skipped, not an error


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
        self.start = to_bytes(profile.frame.start)
        self.end = to_bytes(profile.frame.end)
        self.patterns = [re.compile(to_bytes(x), re.S) for x in profile.frame.patterns]
        self.ck = profile.checksum
        self.max_len = profile.frame.max_length
        self.buf = bytearray()

    # -- framing -------------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Reading]:
        self.buf += data
        out: list[Reading] = []
        while True:
            reading = self._next()
            if reading is None:
                return out
            if reading is not _BLANK:
                out.append(reading)

    def flush(self) -> list[Reading]:
        """At the end of a stream: what is left is a partial frame (if not only blanks)."""
        rest, self.buf = bytes(self.buf), bytearray()
        return [Reading(rest, error="partial frame at end of input")] if rest.strip() else []

    def _next(self) -> Reading | None:
        buf, start, end = self.buf, self.start, self.end
        if start:
            i = buf.find(start)
            if i < 0:
                keep = len(start) - 1
                if len(buf) > self.max_len:
                    junk = bytes(buf[: len(buf) - keep])
                    del buf[: len(buf) - keep]
                    return Reading(junk, error="garbage: no frame start")
                return None
            if i > 0 and buf[:i].strip(b"\r\n\x00 "):
                junk = bytes(buf[:i])
                del buf[:i]
                return Reading(junk, error="garbage before frame start")
            del buf[:i]
            j = buf.find(end, len(start))
            nxt = buf.find(start, len(start))
            if j < 0 or (0 <= nxt < j):
                if nxt >= 0 and (j < 0 or nxt < j):
                    junk = bytes(buf[:nxt])
                    del buf[:nxt]
                    return Reading(junk, error="partial frame (a new frame started)")
                if len(buf) > self.max_len:
                    junk = bytes(buf[: len(start)])
                    del buf[: len(start)]
                    return Reading(junk, error=f"no frame end within {self.max_len} bytes")
                return None
            body_from = len(start)
        else:
            j = buf.find(end)
            if j < 0:
                if len(buf) > self.max_len:
                    junk = bytes(buf)
                    buf.clear()
                    return Reading(junk, error=f"no frame end within {self.max_len} bytes")
                return None
            body_from = 0
        frame_end = j + len(end)
        after = self.ck.length if self.ck.position == "after_end" else 0
        if len(buf) < frame_end + after:
            return None
        frame = bytes(buf[: frame_end + after])
        del buf[: frame_end + after]
        if frame.strip(b"\r\n\x00 ") == b"":
            return _BLANK
        return self._decode_frame(frame, body_from, j)

    # -- one frame -----------------------------------------------------------------------------
    def _decode_frame(self, frame: bytes, body_from: int, end_at: int) -> Reading:
        ck = self.ck
        body = frame[body_from:end_at]
        if ck.kind != "none":
            if ck.position == "before_end":
                body, got = body[: -ck.length], body[-ck.length :]
            else:
                got = frame[-ck.length :]
            covered = (self.start if ck.include_start else b"") + body
            covered += self.end if ck.include_end else b""
            want = compute_check(ck, covered)
            if len(body) < 1 or got.upper() != want.upper():
                return Reading(frame, error=f"checksum: got {got.hex()} want {want.hex()}")
        return self.decode_body(body, frame)

    def decode_body(self, body: bytes, raw: bytes | None = None) -> Reading:
        raw = body if raw is None else raw
        m = next((m for p in self.patterns if (m := p.fullmatch(body))), None)
        if m is None:
            return Reading(raw, error="frame matches no pattern of the profile")
        g = {k: v for k, v in m.groupdict().items() if v is not None}
        f = self.p.fields
        stable = _flag(f.stable, g, default=True)
        net = _flag(f.net, g)
        overload = _flag(f.overload, g)
        grams: float | None = None
        if "value" in g and not overload:
            text = g["value"].decode("latin-1").replace(" ", "")
            try:
                value = Decimal(text)
            except InvalidOperation:
                return Reading(raw, error=f"bad weight value {text!r}")
            if f.decimals is not None and "." not in text:
                value = value.scaleb(_exponent(f.decimals, g))
            unit = g.get("unit", b"").decode("latin-1").strip().lower() or f.unit
            if f.kg_flag is not None:
                unit = "kg" if _flag(f.kg_flag, g) else "lb"
            if unit not in GRAMS_PER:
                return Reading(raw, error=f"unknown unit {unit!r}")
            negative = g.get("sign", b"").strip() == b"-" or _flag(f.negative, g)
            grams = float(value * GRAMS_PER[unit]) * (-1 if negative else 1)
        return Reading(raw, grams=grams, stable=stable, net=net, overload=overload)


def _flag(spec: FlagSpec | None, groups: dict[str, bytes], default: bool = False) -> bool:
    if spec is None:
        return default
    value = groups.get(spec.group)
    if value is None:
        return spec.default
    if spec.mask is not None:
        hit = bool(value and value[0] & spec.mask)
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
