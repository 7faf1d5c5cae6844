"""The box's screen API against the kitchen's LAN and the pages its browsers open: JSON only,
capped bodies, Host and Origin checked, a token beyond loopback; and fuzzed, never a 5xx."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge.agent import Agent
from edge.config import EdgeConfig
from edge.display.guard import MAX_BODY
from tests.conftest import edge_config, stall_section
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.real


class Screen:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port, self.host = port, host

    def call(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            hdrs = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            for k, v in hdrs.items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


def stall_agent(tmp_path: Path, url: str, **display: Any) -> tuple[Agent, int]:
    port = free_port()
    cfg = edge_config(
        tmp_path,
        url,
        device="stall-7",
        stall=stall_section(tmp_path),
        display={"port": port, **display},
    )
    agent = Agent(cfg)
    agent.start()
    return agent, port


@pytest.fixture
def screen(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Screen]:
    agent, port = stall_agent(tmp_path, mosquitto.url)
    yield Screen(port)
    agent.stop()


JSON = {"Content-Type": "application/json"}


def test_only_json_of_bounded_size_from_this_origin(screen: Screen) -> None:
    assert screen.call("GET", "/api/stall")[0] == 200
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert screen.call("POST", "/api/stall/select", b"plu=101", form)[0] == 415
    text = {"Content-Type": "text/plain"}  # what a cross-site page may send without asking
    assert screen.call("POST", "/api/stall/select", b'{"plu":"101"}', text)[0] == 415
    big = b'{"plu":"' + b"1" * MAX_BODY + b'"}'
    assert screen.call("POST", "/api/stall/select", big, JSON)[0] == 413
    evil = {**JSON, "Origin": "http://evil.example"}
    status, _, body = screen.call("POST", "/api/stall/print", b"{}", evil)
    assert status == 403 and b"cross-origin" in body
    same = {**JSON, "Origin": f"http://127.0.0.1:{screen.port}"}
    assert screen.call("POST", "/api/stall/select", b'{"plu":"9"}', same)[0] == 409  # no such plu
    for host in ("evil.example", "evil.example:80", "box.lan.evil"):
        status, _, body = screen.call("GET", "/api/stall", headers={"Host": host})
        assert status == 400 and b"Host" in body, host
    for host in (f"localhost:{screen.port}", "192.168.1.20:8088", "[::1]:8088"):
        assert screen.call("GET", "/api/stall", headers={"Host": host})[0] == 200, host


def test_beyond_loopback_every_request_needs_the_token(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    token = tmp_path / "screen.token"
    token.write_text("s3cret-kiosk\n")
    agent, port = stall_agent(
        tmp_path, mosquitto.url, host="0.0.0.0", token_file=str(token), allowed_hosts=["box.lan"]
    )
    screen = Screen(port)
    try:
        assert screen.call("GET", "/api/stall")[0] == 401
        assert screen.call("GET", "/stall")[0] == 401
        ok = {"Authorization": "Bearer s3cret-kiosk"}
        assert screen.call("GET", "/api/stall", headers=ok)[0] == 200
        assert screen.call("GET", "/api/stall", headers={"Authorization": "Bearer no"})[0] == 401
        status, hdrs, _ = screen.call("GET", "/stall?token=s3cret-kiosk&lang=zh")
        assert status == 303 and hdrs["location"] == "/stall?lang=zh"
        cookie = hdrs["set-cookie"].split(";")[0]
        assert "HttpOnly" in hdrs["set-cookie"] and "SameSite=Strict" in hdrs["set-cookie"]
        assert screen.call("GET", "/stall", headers={"Cookie": cookie})[0] == 200
        assert screen.call("GET", "/api/stall", headers={"Cookie": "shian_screen=x"})[0] == 401
        named = {"Host": f"box.lan:{port}", **ok}
        assert screen.call("GET", "/api/stall", headers=named)[0] == 200
    finally:
        agent.stop()


def test_beyond_loopback_without_a_token_the_config_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHIAN_DISPLAY_TOKEN", raising=False)
    with pytest.raises(ValidationError, match="token_file"):
        edge_config(tmp_path, "mqtt://127.0.0.1:1", display={"port": 8088, "host": "0.0.0.0"})
    monkeypatch.setenv("SHIAN_DISPLAY_TOKEN", "from-the-environment")
    cfg: EdgeConfig = edge_config(
        tmp_path, "mqtt://127.0.0.1:1", display={"port": 8088, "host": "0.0.0.0"}
    )
    assert cfg.display.token() == "from-the-environment"


paths = st.sampled_from(
    [
        "/",
        "/hall",
        "/stall",
        "/api/hall",
        "/api/stall",
        "/api/stall/select",
        "/api/stall/print",
        "/api/morning-check",
        "/api/disinfection",
        "/api/qr.svg?data=",
        "/hall/cam/x.jpg",
        "/nope",
    ]
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_requests_never_get_a_5xx(screen: Screen, data: st.DataObject) -> None:
    method = data.draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"]))
    path = data.draw(paths) + data.draw(
        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=30)
    )
    body = data.draw(
        st.one_of(
            st.binary(max_size=300),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c),
                max_leaves=10,
            ).map(lambda v: repr(v).encode()),
            st.sampled_from(
                [b'{"plu":"101"}', b'{"staff":"x","temperature":1e999}', b"[" * 5000, b"{}"]
            ),
        )
    )
    ctype = data.draw(st.sampled_from(["application/json", "text/plain", ""]))
    headers = {"Content-Type": ctype} if ctype else {}
    status, _, _ = screen.call(method, path, body, headers)
    assert status < 500, (method, path, body[:80], status)
