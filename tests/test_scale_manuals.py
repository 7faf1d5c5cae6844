"""Every profile against each reply and status its maker's manual lists (docs/scales.md names
the manuals): a frame for each, built from the manual's layout or copied from its example, and
what it must read as. And a frame behind line noise on the same line is found, not lost."""

from __future__ import annotations

from typing import Any

import pytest

from edge.stall.framing import Reading, decode_stream
from edge.stall.profiles import Stability, load_scale_profile
from edge.stall.scale import StableWeight

OTHER = {"other": True}  # a valid reply with no sale weight
ERROR = {"error": True}


def w(grams: float | None, **flags: bool) -> dict[str, Any]:
    return {"grams": grams, **flags}


def toledo(swa: int, swb: int, swc: int, digits: str, check: bool = True) -> bytes:
    frame = bytes([2, swa, swb, swc]) + digits.encode() + b"000000\r"
    return frame + (bytes([(-sum(frame)) & 0x7F]) if check else b"")


FRAMES: list[tuple[str, bytes, dict[str, Any]]] = [
    # Mettler Toledo 8217 (DIVA service manual §6.1.4; Brecknell 67XXU)
    ("mettler_8217", b"\x0201.234\r", w(1234.0, stable=True, net=False)),
    ("mettler_8217", b"\x0201.250N\r", w(1250.0, stable=True, net=True)),
    ("mettler_8217", b"\x02 1.234\r", w(1234.0)),
    ("mettler_8217", b"\x02001.23\r", ERROR),  # the pound layout: never read as kg
    ("mettler_8217", b"\x02?A\r", w(None, stable=False)),  # in motion
    ("mettler_8217", b"\x02?B\r", w(None, overload=True)),
    ("mettler_8217", b"\x02?D\r", w(None, underload=True, stable=True)),
    ("mettler_8217", b"\x02?d\r", w(None, underload=True)),  # negative net
    ("mettler_8217", b"\x02?c\r", w(None, stable=False, overload=True)),
    ("mettler_8217", b"\x02?P\r", w(None, stable=True)),  # centre of zero
    ("mettler_8217", b"\x02\r", OTHER),  # A: confidence test started (DIVA)
    ("mettler_8217", b"\x02?\r", OTHER),  # A (Brecknell)
    ("mettler_8217", b"\x02E\r", OTHER),  # echo
    # Toledo continuous (WILDCAT appendix 2; Ohaus D5000; Cardinal 225)
    ("toledo_continuous", toledo(0x2C, 0x30, 0x20, "001234"), w(12340.0, stable=True, net=False)),
    ("toledo_continuous", toledo(0x2C, 0x31, 0x20, "001234"), w(12340.0, net=True)),
    ("toledo_continuous", toledo(0x2C, 0x32, 0x20, "000050"), w(-500.0)),
    ("toledo_continuous", toledo(0x2C, 0x38, 0x20, "001234"), w(12340.0, stable=False)),
    ("toledo_continuous", toledo(0x2C, 0x34, 0x20, "000000"), w(None, overload=True)),
    ("toledo_continuous", toledo(0x2C, 0x36, 0x20, "000000"), w(None, underload=True)),
    ("toledo_continuous", toledo(0x2C, 0x70, 0x20, "001234"), OTHER),  # not zeroed
    ("toledo_continuous", toledo(0x2A, 0x20, 0x21, "001234"), w(1234.0)),  # grams
    ("toledo_continuous", toledo(0x2C, 0x20, 0x20, "001234"), w(5597.33)),  # lb
    ("toledo_continuous", toledo(0x2D, 0x20, 0x22, "001234"), w(1_234_000.0)),  # tonnes
    ("toledo_continuous", toledo(0x2C, 0x20, 0x23, "001234"), w(349.83)),  # ounces
    ("toledo_continuous", toledo(0x2C, 0x30, 0x28, "001234"), w(12340.0)),  # print request
    ("toledo_continuous", toledo(0x2C, 0x30, 0x30, "012345"), OTHER),  # expanded x10
    ("toledo_continuous", toledo(0x2C, 0x30, 0x20, "001234")[:-1] + b"X", ERROR),
    # CAS CI (CI-400 appendix 1, CI-600D, CI-6000A)
    ("cas_ci", b"ST,GS,\x31\xe4,000013.5 kg\r\n", w(13500.0, stable=True, net=False)),
    ("cas_ci", b"ST,GS,\x31\xc4,000013.5 kg\r\n", w(13500.0, stable=True)),
    ("cas_ci", b"US,NT,\x31\xa2,-00000.5 kg\r\n", w(-500.0, stable=False, net=True)),
    ("cas_ci", b"OL,GS,\x31\xa4,         kg\r\n", w(None, overload=True)),
    ("cas_ci", b"ST,GS,\x31\xe5,000000.0 kg\r\n", w(0.0, stable=True)),
    ("cas_ci", b"ST,GS,\x31\xf4,000013.5 kg\r\n", OTHER),  # hold lamp: a frozen weight
    ("cas_ci", b"ST,GS,\x31\xe4,0001.234  t\r\n", w(1_234_000.0)),
    ("cas_ci", b"ST,GS,\x0d\xe4,000013.5 kg\r\n", w(13500.0)),  # an id byte that is CR
    ("cas_ci", b"ERR  01\r\n", ERROR),
    # CAS SW (SW-II manual, RS-232C protocol)
    ("cas_aclas_sw", b"\x01\x02S 01.234KGe\x03\x04", w(1234.0, stable=True)),
    ("cas_aclas_sw", b"\x01\x02S  1.234KGu\x03\x04", w(1234.0, stable=True)),
    ("cas_aclas_sw", b"\x01\x02U-00.500KGo\x03\x04", w(-500.0, stable=False)),
    ("cas_aclas_sw", b"\x01\x02S 02.500LBd\x03\x04", w(1133.98)),
    ("cas_aclas_sw", b"\x01\x02F 00.000KGt\x03\x04", w(None, overload=True)),
    ("cas_aclas_sw", b"\x01\x02S 01.234KGX\x03\x04", ERROR),  # bad BCC
    # Yaohua XK3190-A9 (A9+ manual; DS1 worked example; A23P commands)
    ("xk3190", b"\x02+00200021B\x03", w(20000.0)),  # the DS1 manual's own example
    ("xk3190", b"\x02+00123431C\x03", w(1234.0)),
    ("xk3190", b"\x02-00005021A\x03", w(-500.0)),
    ("xk3190", b"\x02+002000213\x03", ERROR),
    ("xk3190", b"\x02AB+002000218\x03", w(20000.0, net=False)),
    ("xk3190", b"\x02AD+001234319\x03", w(1234.0, net=True)),
    ("xk3190", b"\x02AC+00050021E\x03", OTHER),  # tare
    ("xk3190", b"\x02AA00\x03", OTHER),  # handshake (the A23P manual's own bytes)
    ("xk3190_a12e", b"WG004.139kg3D\r\n", w(4139.0, net=False)),  # the manual's example
    ("xk3190_a12e", b"WN004.139kg34\r\n", w(4139.0, net=True)),
    ("xk3190_a12e", b"WG-04.139kg20\r\n", w(-4139.0)),
    ("xk3190_a12e", b"         OL23\r\n", w(None, overload=True)),
    ("xk3190_a12e", b"         LO23\r\n", w(None, underload=True)),
    # A&D indicators (AD-4402/4404, AD-4406, AD-4329A) and balances (GX, EK-L)
    ("ad_st_gs", b"ST,NT,+0012.34kg\r\n", w(12340.0, stable=True, net=True)),  # the manual's
    ("ad_st_gs", b"ST,GS,+0012.34kg\r\n", w(12340.0, stable=True, net=False)),
    ("ad_st_gs", b"US,GS,-0000.50kg\r\n", w(-500.0, stable=False)),
    ("ad_st_gs", b"ST,TR,+0001.00kg\r\n", OTHER),  # a tare value is no sale weight
    ("ad_st_gs", b"ST,PT,+0001.00kg\r\n", OTHER),
    ("ad_st_gs", b"LO,GS,     .  kg\r\n", w(None, overload=True)),
    ("ad_st_gs", b"OL,GS,     .  kg\r\n", w(None, overload=True)),
    ("ad_st_gs", b"HD,GS,+0012.34kg\r\n", OTHER),  # held
    ("ad_st_gs", b"ST,GS,+0012,34kg\r\n", w(12340.0)),  # decimal comma
    ("ad_st_gs", b"ST,GS,+0012.34 kg\r\n", w(12340.0)),
    ("ad_st_gs", b"ST,GS,+012.345 t\r\n", w(12_345_000.0)),
    ("ad_st_gs", b"?\r\n", OTHER),
    ("ad_st_gs", b"I\r\n", OTHER),
    ("ad_st_gs", b"ST,+00001.27  g\r\n", w(1.27, stable=True)),  # the GX manual's
    ("ad_st_gs", b"US,-00183.69  g\r\n", w(-183.69, stable=False)),  # the GX manual's
    ("ad_st_gs", b"OL,+9999999E+19\r\n", w(None, overload=True)),
    ("ad_st_gs", b"OL,-9999999E+19\r\n", w(None, underload=True)),
    ("ad_st_gs", b"QT,+00012345 PC\r\n", OTHER),  # the EK-L manual's count
    # Ohaus Defender 3000 / 5000 (print format)
    ("ohaus_defender", b"   0.360 kg    G\r\n", w(360.0, stable=True, net=False)),
    ("ohaus_defender", b"   0.360 kg   ?G\r\n", w(360.0, stable=False)),
    ("ohaus_defender", b"   0.360 kg    NET\r\n", w(360.0, stable=True, net=True)),
    ("ohaus_defender", b"   0.360 kg   ?NET\r\n", w(360.0, stable=False, net=True)),
    ("ohaus_defender", b"-   0.360 kg    G\r\n", w(-360.0)),
    ("ohaus_defender", b"   0.100 kg    T\r\n", OTHER),
    ("ohaus_defender", b"   0.100 kg    PT\r\n", OTHER),
    ("ohaus_defender", b"     12 PCS   G\r\n", OTHER),
    # Mettler Toledo MS204 print output and MT-SICS
    ("mettler_ms204", b"     N       0.3749 g   \r\n", w(0.3749, net=True, stable=True)),
    ("mettler_ms204", b"S S     100.00 g\r\n", w(100.0, stable=True)),
    ("mettler_ms204", b"S D      0.3751 g\r\n", w(0.3751, stable=False)),
    ("mettler_ms204", b"S +\r\n", w(None, overload=True)),
    ("mettler_ms204", b"S -\r\n", w(None, underload=True)),
    ("mettler_ms204", b"T S      0.1000 g\r\n", OTHER),
    ("mettler_sics", b"S S     -0.0082 g\r\n", w(-0.0082, stable=True)),
    ("mettler_sics", b"S I\r\n", w(None)),
    ("mettler_sics", b"Z A\r\n", OTHER),
    ("mettler_sics", b"ES\r\n", ERROR),
    ("mettler_sics", b"EL\r\n", ERROR),
    # T-Scale QHW / NHB (ROW 'Con1')
    ("qhw_st_gs", b"ST,GS,   245.6 g\r\n", w(245.6, stable=True)),
    ("qhw_st_gs", b"ST,NT,-    8.0 g\r\n", w(-8.0, net=True)),
    ("qhw_st_gs", b"OL,GS,         g\r\n", w(None, overload=True)),
    ("qhw_st_gs", b"ST,TR,   245.6 g\r\n", ERROR),
    ("nhb_st_gs", b"ST,NT -  20.7g  \r\n", w(-20.7, net=True)),
    ("nhb_st_gs", b"OL,GS          \r\n", w(None, overload=True)),
    # the QA scale: stable only when settled
    ("weight_qa_signed", b"+007.12/3 G S\r\n", w(7120.0, stable=False)),
    ("weight_qa_signed", b"+009.36/0 G S\r\n", w(9360.0, stable=True)),
    ("weight_qa_signed", b"+123.45/0 G U\r\n", w(123450.0, stable=False)),
]


def matches(r: Reading, expected: dict[str, Any]) -> bool:
    if expected == ERROR:
        return r.error is not None
    if expected == OTHER:
        return r.other and r.error is None
    got = r.as_json()
    return (
        r.error is None
        and not r.other
        and all(
            got.get(k) == pytest.approx(v, abs=0.01) if isinstance(v, float) else got.get(k) == v
            for k, v in expected.items()
        )
    )


@pytest.mark.parametrize(("name", "frame", "expected"), FRAMES, ids=lambda x: repr(x)[:40])
def test_each_reply_the_manual_lists(name: str, frame: bytes, expected: dict[str, Any]) -> None:
    (r,) = decode_stream(load_scale_profile(name), frame)
    assert matches(r, expected), (r.as_json(), expected)


NOISE = [
    ("ad_st_gs", b"\x00\xffgarbageST,GS,+0012.34kg\r\n", 12340.0, 1),
    ("ad_st_gs", b"\x00ST,GS,+0012.34kg\r\n", 12340.0, 0),  # a power-up NUL
    ("ad_st_gs", b"  ST,GS,+0012.34kg\r\n", 12340.0, 0),  # padding is no noise
    ("ad_st_gs", b"ST,GS,+0012.34kg\x00\r\n", 12340.0, 0),
    ("ad_st_gs", b"ST,GS,+00ST,GS,+0012.34kg\r\n", 12340.0, 1),  # a cut frame, then a whole
    ("ohaus_defender", b"\x00   0.360 kg    G\r\n", 360.0, 0),
    ("mettler_ms204", b"\x00\xff     N       0.3749 g   \r\n", 0.3749, 0),
    ("qhw_st_gs", b"\xfe\x80#ST,GS,   245.6 g\r\n", 245.6, 1),
    ("weight_qa_signed", b"**+009.36/0 G S\r\n", 9360.0, 1),
    ("xk3190", b"\x00\xffgarbage\x02+00123431C\x03", 1234.0, 1),
    ("xk3190_a12e", b"\x13\x11WG004.139kg3D\r\n", 4139.0, 1),
]


@pytest.mark.parametrize(("name", "line", "grams", "noise"), NOISE, ids=lambda x: repr(x)[:30])
def test_a_frame_behind_noise_on_its_line_is_found(
    name: str, line: bytes, grams: float, noise: int
) -> None:
    readings = decode_stream(load_scale_profile(name), line)
    weights = [r.grams for r in readings if not r.error]
    assert weights == [pytest.approx(grams)] and len(readings) == 1 + noise, readings


def test_junk_digits_never_join_the_value() -> None:
    """Noise that looks like a number must not make a bigger weight out of the frame."""
    readings = decode_stream(load_scale_profile("ohaus_defender"), b"abc1   0.360 kg    G\r\n")
    assert [r.grams for r in readings if not r.error] in ([], [360.0])


@pytest.mark.parametrize("end", [b"\r", b"\n", b"\r\n"])
def test_a_and_d_frames_end_with_cr_or_cr_lf(end: bytes) -> None:
    """A documented AD-4402 setting is CR alone: before, every frame was lost to it."""
    readings = decode_stream(load_scale_profile("ad_st_gs"), (b"ST,GS,+0012.34kg" + end) * 5)
    assert [r.grams for r in readings] == [12340.0] * 5


def test_toledo_without_its_optional_check() -> None:
    frames = toledo(0x2C, 0x30, 0x20, "001234", check=False) * 3
    readings = decode_stream(load_scale_profile("toledo_continuous"), frames)
    assert [r.grams for r in readings] == [12340.0] * 3


def test_a_bad_frame_between_stable_ones_breaks_the_run() -> None:
    rule = Stability(frames=3, tolerance_g=1, zero_g=1)
    weigh = StableWeight(rule)
    ok = Reading(b"", grams=100.0, stable=True)
    states = [weigh.push(r).state for r in (ok, ok, Reading(b"", error="noise"), ok, ok)]
    assert states == ["unstable"] * 5, "three stable frames in a row means in a row"
    assert weigh.push(ok).state == "stable"
    assert weigh.push(Reading(b"", underload=True, stable=True)).state == "negative"
