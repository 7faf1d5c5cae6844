"""Live views' rules on a controlled clock (cloud.live.sessions) and the box's side of them
(edge.live.streams), with every input from outside fuzzed: commands to the box, the media
server's questions, frames from boxes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.config import LiveSettings
from cloud.live.relay import check_frame
from cloud.live.sessions import LiveSessions
from cloud.store import Store
from edge.config import CameraSettings
from edge.live.jpeg import encode
from edge.live.streams import LiveStreams
from shared.live import LiveCommand
from tests.conftest import register, wait_for
from tests.test_alerts_engine import ev, feed

T0 = 1_780_000_000.0  # a Thursday, 04:26 in China


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def offer(*cams: dict[str, Any]) -> dict[str, Any]:
    base = {"label": "", "public": True, "hours": [], "mode": "copy"}
    return {"cameras": [{**base, **c} for c in cams], "timezone_offset_h": 8}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "c.db")
    s.sites.set("s1", "xianan", "canteen")
    register(s, "k1", "s1")
    with s.db.tx() as conn:
        conn.execute("INSERT INTO devices (device, site, state) VALUES ('k1', 's1', 'online')")
    data = offer({"camera": "hot"}, {"camera": "cold", "mode": "jpeg"}, {"camera": "back",
                 "public": False}, {"camera": "wash", "hours": [{"days": ["mon"],
                 "start": "06:00", "end": "07:00"}]})  # fmt: skip
    feed(store=s, bodies=[ev("live_offer", data, 1)], now=T0)
    return s


@pytest.fixture
def live(store: Store) -> tuple[LiveSessions, Clock, list[tuple[str, LiveCommand]]]:
    sent: list[tuple[str, LiveCommand]] = []
    clock = Clock()
    cfg = LiveSettings(rtmp_url="rtmp://media/live", viewer_timeout_s=10, linger_s=15,
                       lease_s=30, start_timeout_s=20, max_viewers_per_site=3)  # fmt: skip
    sessions = LiveSessions(cfg, store.db, lambda d, c: sent.append((d, c)), clock)
    return sessions, clock, sent


def test_the_first_viewer_starts_the_box_and_the_last_one_leaving_stops_it(live: Any) -> None:
    sessions, clock, sent = live
    a = sessions.watch("s1", 1)
    assert a is not None and a.state == "starting"
    ((device, cmd),) = sent
    assert (device, cmd.action, cmd.camera) == ("k1", "start", "hot")
    assert cmd.url.startswith(f"rtmp://media/live/{cmd.stream}?k=")
    b = sessions.watch("s1", 1)  # a second viewer: the same stream, no new command
    assert b is not None and len(sent) == 1
    key = cmd.url.split("k=")[1]
    assert not sessions.published(cmd.stream, "0" * 32)
    assert sessions.published(cmd.stream, key)
    assert sessions.poll(a.token).json()["play"] == f"/hls/{a.token}/{cmd.stream}.m3u8"
    for t in range(1, 40):  # both watch for 40 s: the lease is renewed every 10 s
        clock.now = T0 + t
        assert sessions.allowed(f"/hls/{a.token}/{cmd.stream}-{t}.ts")
        assert sessions.allowed(f"/hls/{b.token}/{cmd.stream}.m3u8")
        sessions.tick()
    assert [c.action for _, c in sent] == ["start"] * 4
    assert not sessions.allowed(f"/hls/{a.token}/{'a' * 24}.m3u8")  # another stream
    sessions.leave(b.token)
    for t in range(40, 40 + 10 + 15 + 2):  # a goes quiet: 10 s to time out, 15 s of linger
        clock.now = T0 + t
        sessions.tick()
    assert sent[-1][1].action == "stop" and sent[-1][1].stream == cmd.stream
    assert not sessions.sessions
    assert sessions.poll(a.token).json()["notice"] == "ended"


def test_notices_for_hours_privacy_the_switch_offline_and_the_cap(live: Any, store: Store) -> None:
    sessions, clock, sent = live
    assert sessions.watch("s1", 3).json()["notice"] == "hours"  # the wash room, Mondays 6-7
    assert sessions.watch("s1", 4) is None  # "back" is not public: there are three views
    assert sessions.watch("nowhere", 1) is None
    tokens = [sessions.watch("s1", n) for n in (1, 2, 1)]
    assert all(t is not None and t.state == "starting" for t in tokens)
    assert sessions.watch("s1", 2).json()["notice"] == "full"  # cap 3
    store.sites.set_live("s1", cap=20)
    assert sessions.watch("s1", 2).state == "starting"
    assert sessions.watch("s1", 2, "10.0.0.9").state == "starting"
    for _ in range(4):
        assert sessions.watch("s1", 1, "10.0.0.7").state == "starting"
    assert sessions.watch("s1", 1, "10.0.0.7").json()["notice"] == "full"  # 4 a client
    store.sites.set_live("s1", off=True)
    clock.now += 1
    sessions.tick()  # the switch ends every session at the next tick
    assert not sessions.sessions and {c.action for _, c in sent[-2:]} == {"stop"}
    assert sessions.poll(tokens[0].token).json()["notice"] == "off"
    assert sessions.watch("s1", 1).json()["notice"] == "off"
    store.sites.set_live("s1", off=False)
    with store.db.tx() as conn:
        conn.execute("UPDATE devices SET state = 'offline' WHERE device = 'k1'")
    assert sessions.notices("s1") == {1: "offline", 2: "offline", 3: "hours"}


def test_a_box_that_never_sends_is_offline_and_a_jpeg_view_is_served(live: Any) -> None:
    sessions, clock, sent = live
    a = sessions.watch("s1", 1)
    for _ in range(21):  # the page asks every second while it starts; nothing comes
        clock.now += 1
        assert sessions.poll(a.token).state == "starting"
        sessions.tick()
    assert sessions.poll(a.token).json()["notice"] == "offline" and sent[-1][1].action == "stop"
    j = sessions.watch("s1", 2)
    stream = sent[-1][1].stream
    jpeg = encode(np.zeros((360, 640, 3), np.uint8))
    assert sessions.frame("k9", stream, jpeg) is not None  # not that box's stream
    assert sessions.frame_for(j.token) is None
    assert sessions.frame("k1", stream, jpeg) is None
    assert sessions.frame_for(j.token) == jpeg
    assert sessions.poll(j.token).json() == {
        "state": "live", "token": j.token, "mode": "jpeg",
        "frame": f"/live/{j.token}/frame.jpg",
    }  # fmt: skip


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(uri=st.text(max_size=120) | st.from_regex(r"/hls/[0-9a-f]{32}/[a-z0-9]{24}\.m3u8"))
def test_any_uri_the_media_server_asks_about_is_refused_without_a_live_token(
    live: Any, uri: str
) -> None:
    sessions, _, _ = live
    assert sessions.allowed(uri) is False


@given(payload=st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_any_frame_that_is_not_a_small_jpeg_is_refused(payload: bytes) -> None:
    assert check_frame(payload) is not None
    assert check_frame(encode(np.full((90, 160, 3), 128, np.uint8))) is None


# -- the box --------------------------------------------------------------------------------
class Frame:
    def __init__(self, n: int) -> None:
        self.image, self.n = np.full((360, 640, 3), n % 255, np.uint8), n


def box(public: bool = True) -> tuple[LiveStreams, list[tuple[str, dict[str, Any]]], list[int]]:
    events: list[tuple[str, dict[str, Any]]] = []
    frames: list[int] = []
    count = iter(range(1, 10**6))
    cams = [CameraSettings(name="cold", source="images:/x", public=public, live_jpeg_fps=5)]
    streams = LiveStreams(
        cams,
        latest=lambda _c: Frame(next(count)),
        online=lambda _c: True,
        publish=lambda _s, data: frames.append(len(data)) or True,
        emit=lambda kind, data: events.append((kind, data)),
    )
    return streams, events, frames


def test_the_box_sends_while_the_lease_runs_and_stops_when_it_runs_out() -> None:
    streams, events, frames = box()
    cmd = {"action": "start", "camera": "cold", "stream": "a" * 24, "lease_s": 1.0}
    streams.on_command("live", json.dumps(cmd).encode())
    streams.start()
    try:
        wait_for(lambda: len(frames) >= 3, 10, "frames")
        wait_for(lambda: not streams.streams, 10, "the lease to run out")
    finally:
        streams.stop()
    assert [(k, d["state"], d["mode"]) for k, d in events] == [
        ("live", "started", "jpeg"), ("live", "stopped", "jpeg")]  # fmt: skip
    assert events[1][1]["reason"] == "the lease ran out" and events[1][1]["sent_bytes"] > 0


def test_a_camera_the_site_keeps_private_is_never_sent() -> None:
    streams, events, frames = box(public=False)
    cmd = LiveCommand(action="start", camera="cold", stream="b" * 24)
    streams.handle(cmd)
    assert not streams.streams and not frames
    assert events[0][1]["state"] == "failed" and "not public" in events[0][1]["reason"]


@given(payload=st.binary(max_size=300) | st.builds(
    lambda d: json.dumps(d).encode(),
    st.fixed_dictionaries({"action": st.sampled_from(["start", "stop", "x"]),
                           "camera": st.sampled_from(["cold", "nope", "../x", ""]),
                           "stream": st.text(max_size=40),
                           "url": st.sampled_from(["", "rtmp://m/live/x", "http://x", "rtmp://"]),
                           "lease_s": st.floats(allow_nan=True)})))  # fmt: skip
def test_any_command_is_taken_or_refused_with_a_clear_error(payload: bytes) -> None:
    streams, _, _ = box()
    try:
        streams.on_command("live", payload)
    except ValueError as exc:
        assert str(exc).startswith(("bad live command", "live command for unknown camera"))
