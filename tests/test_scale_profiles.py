"""Scale profiles: every profile decodes its real capture or its manual's frames; arbitrary
bytes never crash the decoder; a frame whose check fails never gives a weight."""

from __future__ import annotations

from functools import reduce
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.stall.framing import FrameDecoder, Reading, compute_check, decode_stream
from edge.stall.profiles import ScaleProfile, load_scale_profile, profile_names, to_bytes
from edge.stall.scale import StableWeight
from shared.config import ConfigError
from tests.support.data import CAPTURES

needs_captures = pytest.mark.skipif(
    not CAPTURES.exists(), reason=f"{CAPTURES} missing (the shared test data)"
)

# profile -> (capture, every weight in it, grams, as read from the bytes by eye)
REAL = {
    "qhw_st_gs": ("qhw_st_gs_grams.bin", {245.2, 245.3, 245.4, 245.5, 245.6}),
    "nhb_st_gs": ("nhb_st_gs_grams.bin", {20.7}),
    "ohaus_defender": ("ohaus_defender3000_kg.bin", {360.0}),
    "mettler_ms204": ("mettler_ms204_net_grams.bin", {0.3746, 0.3747, 0.3749}),
    "weight_qa_signed": ("weight_qa_signed.bin", {1230.0, 2230.0, 7120.0, 8120.0, 9360.0}),
}


@needs_captures
@pytest.mark.parametrize("name", sorted(REAL))
def test_real_captures_decode(name: str) -> None:
    capture, weights = REAL[name]
    readings = decode_stream(load_scale_profile(name), (CAPTURES / capture).read_bytes())
    good = [r for r in readings if not r.error]
    bad = [r for r in readings if r.error]
    assert {r.grams for r in good} == weights
    assert len(good) >= 7 and len(bad) <= 2, [r.as_json() for r in bad]
    # only the cut-off first and last frames of a capture may fail
    assert all(r in (readings[0], readings[-1]) for r in bad)


def test_mettler_capture_is_net_and_ohaus_is_gross() -> None:
    if not CAPTURES.exists():
        pytest.skip("shared test data missing")
    ms = decode_stream(
        load_scale_profile("mettler_ms204"), (CAPTURES / "mettler_ms204_net_grams.bin").read_bytes()
    )
    assert all(r.net for r in ms if not r.error)
    oh = decode_stream(
        load_scale_profile("ohaus_defender"), (CAPTURES / "ohaus_defender3000_kg.bin").read_bytes()
    )
    assert not any(r.net for r in oh if not r.error)


# Each profile against its maker's manual, reply by reply: tests/test_scale_manuals.py.


def toledo_frame(grams_digits: str, dp_code: int, swb: int) -> bytes:
    frame = bytes([2, 0x30 | dp_code, 0x20 | swb, 0x20]) + grams_digits.encode() + b"000000\r"
    return frame + bytes([(-sum(frame)) & 0x7F])


def test_toledo_status_bits() -> None:
    p = load_scale_profile("toledo_continuous")
    (r,) = decode_stream(p, toledo_frame("012345", 3, 0x10 | 0x01 | 0x02))  # kg, net, negative
    assert (r.grams, r.net, r.stable) == (-1234500.0, True, True)
    (r,) = decode_stream(p, toledo_frame("000250", 2, 0x08))  # lb, in motion
    assert r.grams == pytest.approx(250 * 453.59237) and not r.stable
    (r,) = decode_stream(p, toledo_frame("000250", 2, 0x10 | 0x04))  # out of range
    assert r.overload and r.grams is None


def test_every_profile_has_frames_that_decode() -> None:
    for name in profile_names():
        profile = load_scale_profile(name)
        assert profile.examples or name in REAL, f"{name}: add examples from its manual"
        for ex in profile.examples:
            readings = decode_stream(profile, to_bytes(ex))
            assert len(readings) == 1 and not readings[0].error, (name, ex, readings)


def test_resync_after_garbage_and_partial_frames() -> None:
    p = load_scale_profile("xk3190")
    good = b"\x02+00123431C\x03"
    stream = b"\xff\xfe junk" + good[:5] + good + b"\x00" + good
    readings = decode_stream(p, stream)
    weights = [r.grams for r in readings if not r.error]
    assert weights == [1234.0, 1234.0]
    assert any("partial" in (r.error or "") for r in readings)


def test_a_frame_split_across_reads_is_joined() -> None:
    dec = FrameDecoder(load_scale_profile("ad_st_gs"))
    frame = b"ST,GS,+0012.34kg\r\n"
    got: list[Reading] = []
    for i in range(len(frame)):
        got += dec.feed(frame[i : i + 1])
    assert [r.grams for r in got] == [12340.0]


CHECKED = [n for n in profile_names() if load_scale_profile(n).checksum.kind != "none"]


@pytest.mark.parametrize("name", CHECKED)
@given(data=st.data())
def test_a_frame_whose_check_fails_never_gives_a_weight(name: str, data: st.DataObject) -> None:
    profile = load_scale_profile(name)
    frame = bytearray(to_bytes(profile.examples[0]))
    start, end = to_bytes(profile.frame.start), to_bytes(profile.frame.end)
    ck = profile.checksum
    body_from = len(start)
    body_to = len(frame) - len(end) - (ck.length if ck.position == "before_end" else 0)
    if ck.position == "after_end":
        body_to = len(frame) - len(end) - ck.length
    pos = data.draw(st.integers(body_from, body_to - 1))
    value = data.draw(st.integers(0x20, 0x7E).filter(lambda v: v != frame[pos]))
    frame[pos] = value
    covered = (start if ck.include_start else b"") + bytes(frame[body_from:body_to])
    covered += end if ck.include_end else b""
    still_valid = compute_check(ck, covered).upper() in bytes(frame).upper()
    for r in decode_stream(profile, bytes(frame)):
        if r.grams is not None:
            assert still_valid, f"a weight from a frame with a wrong check: {r}"


@pytest.mark.parametrize("name", profile_names())
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(name: str, data: bytes) -> None:
    profile = load_scale_profile(name)
    dec = FrameDecoder(profile)
    for chunk in (data[: len(data) // 2], data[len(data) // 2 :]):
        for r in dec.feed(chunk):
            assert r.error or r.grams is not None or r.overload or r.stable is not None
    assert len(dec.buf) <= profile.frame.max_length + 8


def test_stable_weight_needs_n_frames_within_tolerance() -> None:
    p = load_scale_profile("qhw_st_gs")
    sw = StableWeight(p.stability.model_copy(update={"frames": 3, "tolerance_g": 0.5}))
    r = lambda g, stable=True: Reading(b"", grams=g, stable=stable)  # noqa: E731
    assert sw.push(r(245.0)).state == "unstable"
    assert sw.push(r(245.2)).state == "unstable"
    assert sw.push(r(245.3)).state == "stable"
    assert sw.push(r(250.0)).state == "unstable"  # spread too wide
    assert sw.push(r(250.0, stable=False)).state == "unstable"
    for _ in range(3):
        w = sw.push(r(0.4))
    assert w.state == "zero" and not w.sellable
    for _ in range(3):
        w = sw.push(r(-30.0))
    assert w.state == "negative" and not w.sellable
    assert sw.push(Reading(b"", overload=True)).state == "overload"


def test_a_profile_naming_a_missing_group_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'title = "x"\nsource = "y"\n[frame]\nend = "\\r"\npatterns = ["(?P<value>[0-9]+)"]\n'
        '[fields]\nstable = { group = "status", values = ["S"] }\n'
    )
    with pytest.raises(ConfigError, match="group 'status' is not in any pattern"):
        load_scale_profile(str(bad))
    assert isinstance(load_scale_profile("ad_st_gs"), ScaleProfile)
    assert reduce(lambda a, b: a ^ b, b"+0012343", 0) == 0x1C
