"""Every public endpoint answers every request with a 2xx or a 4xx, never a 5xx: hypothesis
sends the collector's public pages, served by the real uvicorn, whatever paths, queries,
methods, headers and bodies it can make, around a genuine ticket and a real snapshot."""

from __future__ import annotations

import http.client
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cloud.alerts.engine import AlertEngine
from cloud.batch import Snapshot
from cloud.broker_files import BrokerFiles
from cloud.collector import Incoming, classify
from cloud.config import AlertSettings, CloudConfig, ConsoleSettings
from cloud.console.accounts import Accounts
from cloud.live.service import LiveService
from cloud.store import Store
from cloud.web import make_app
from shared.codec import batch_payload
from shared.ids import uuid7
from shared.signing import new_ticket_id, sign
from shared.webserver import WebServer
from tests.conftest import register
from tests.test_codec import raw_event

pytestmark = pytest.mark.real


class Site:
    def __init__(self, root: Path) -> None:
        self.store = Store(root / "c.db", engine=AlertEngine(AlertSettings()))
        self.store.sites.set("m1", "d1", "<b>市场</b>")  # a site with a public page
        register(self.store, "stall-1", "m1", "stall", market="m", stall_no="1", retailer="r")
        key = bytes(range(32))
        (root / "keys").mkdir()
        (root / "keys" / "stall-1.key").write_text(key.hex())
        t: dict[str, Any] = {
            "ticket_id": new_ticket_id(),
            "market": "m",
            "stall": "1",
            "retailer": "r",
            "plu": "1",
            "product": "菜<b>",
            "batch": "b",
            "origin": "o",
            "unit": "kg",
            "quantity": 5,
            "unit_price_cents": 1,
            "total_cents": 1,
            "time": "2026-11-30T04:00:00Z",
        }
        t["sig"] = sign(key, t)
        body = raw_event(1, json.dumps(t), device="stall-1", site="m1", kind="ticket")
        msgs = [Incoming(None, 1, 1, "shian/v1/dev/stall-1/events", batch_payload([body]))]
        self.store.write(*classify(msgs))
        buf = io.BytesIO()
        Image.new("RGB", (32, 32)).save(buf, "JPEG")
        self.snap = str(uuid7())
        self.store.write([], [], [], [Snapshot("stall-1", self.snap, buf.getvalue())])
        self.ticket = t
        register(self.store, "kitchen-1", "m1")  # a box offering a public camera
        offer = {"cameras": [{"camera": "c1", "public": True, "mode": "copy"}],
                 "timezone_offset_h": 8}  # fmt: skip
        body = raw_event(1, json.dumps(offer), device="kitchen-1", site="m1", kind="live_offer")
        msgs = [Incoming(None, 1, 1, "shian/v1/dev/kitchen-1/events", batch_payload([body]))]
        self.store.write(*classify(msgs))
        seen = {"camera": "c1", "type": "rodent", "label": "Mouse", "score": 0.9,
                "box": [1, 2, 3, 4], "frame": [640, 360], "model": "m"}  # fmt: skip
        body = raw_event(2, json.dumps(seen), device="kitchen-1", site="m1", kind="violation")
        msgs = [Incoming(None, 1, 1, "shian/v1/dev/kitchen-1/events", batch_payload([body]))]
        self.store.write(*classify(msgs))
        self.alert = self.store.alerts.list()[0]["id"]  # one the console can act on
        cfg = CloudConfig(data_dir=root, live={"rtmp_url": "rtmp://127.0.0.1:9/live"})
        live = LiveService(cfg, self.store.db)  # its broker session is not started
        self.store.sites.add_supervisor("wang", "d1")
        BrokerFiles(root / "broker").set_passwords({"wang": "pw"})
        console = Accounts(self.store.db, ConsoleSettings(max_failures=10**6), root / "broker")
        self.console = console
        self.token = ""
        self.ensure_session()
        app = make_app(self.store, root / "keys", live=live, console=console)
        self.web = WebServer(app, "127.0.0.1", 0)
        self.web.start()

    def ensure_session(self) -> None:
        """A logged-in browser (again, when a fuzzed request logged it out)."""
        if self.token and self.console.session(self.token, time.time()) is not None:
            return
        self.token, session = self.console.login("wang", "pw", "127.0.0.1", time.time())
        self.cookie, self.csrf = f"shian_console={self.token}", session.csrf

    def request(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.web.port, timeout=10)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            return conn.getresponse().status
        finally:
            conn.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    s = Site(tmp_path_factory.mktemp("public"))
    yield s
    s.web.stop()
    s.store.close()


def targets(site: Site) -> st.SearchStrategy[str]:
    t = site.ticket
    known = [
        f"/t/{t['ticket_id']}?s={t['sig']}",
        f"/t/{t['ticket_id']}.json?s={t['sig']}",
        f"/t/{t['ticket_id']}",
        f"/snap/{site.snap}.jpg",
        "/healthz",
        "/k/m1",
        "/k/m1.json",
        "/k/",
        "/fleet/files/" + "0" * 64,
        "/t/",
        "/snap/.jpg",
        "/k/m1/live/1",
        "/k/m1/live/99",
        "/live/auth",
        "/live/publish",
        "/live/publish_done",
        "/live/page.js",
        "/assets/hls.light.min.js",
        "/assets/..%2fc.db",
        "/live/" + "0" * 32,
        "/live/" + "0" * 32 + "/frame.jpg",
        "/live/" + "0" * 32 + "/leave",
        "/console",
        "/console/login",
        "/console/logout",
        "/console/rows",
        "/console/stream",
        "/console/export.csv",
        "/console/alerts/x",
        f"/console/alerts/{site.alert}",
        "/console/console.js",
        "/console/centre",
        "/console/centre.json",
        "/centre",
        "/console/figures",
        "/console/figures.xlsx",
        "/console/sites/m1",
        "/patrol",
        "/console/patrol",
        "/console/patrols",
        "/console/photos",
        "/console/photos.js",
        "/console/patrol/x",
        "/console/patrol/x/report",
        "/console/patrol/x/items/pests",
        "/console/patrol/x/finish",
        "/console/patrol/x/hazards/y",
    ]
    noise = st.text(max_size=60).map(lambda x: quote(x, safe="/?&=%.;:@!$'()*+,~"))
    raw = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60)
    return st.one_of(
        st.sampled_from(known),
        st.builds(lambda k, n: k + n, st.sampled_from(known), st.one_of(noise, raw)),
        st.builds(lambda n: "/" + n, st.one_of(noise, raw)),
    )


header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)
headers = st.dictionaries(
    st.sampled_from(
        [
            *("Host", "Range", "If-Range", "Cookie", "Content-Type", "Accept", "Origin"),
            *("Referer", "X-Original-URI", "X-CSRF-Token", "Content-Length"),
        ]
    ),
    header_values,
    max_size=4,
)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_no_request_gets_a_5xx(site: Site, data: st.DataObject) -> None:
    site.ensure_session()  # a fuzzed log-out ends it: the next request is logged in again
    method = data.draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "X"]))
    target = data.draw(targets(site))
    body = data.draw(
        st.binary(max_size=200)
        | st.builds(
            lambda a, n, d: urlencode({"csrf": site.csrf, "action": a, "note": n, "due_h": d}),
            st.text(max_size=30), st.text(max_size=30), st.text(max_size=8),
        ).map(str.encode)
    )  # fmt: skip
    hdrs = {"Host": "127.0.0.1", **data.draw(headers)}
    if data.draw(st.booleans()):
        hdrs["Cookie"] = site.cookie
    status = site.request(method, target, body, hdrs)
    assert 200 <= status < 500, (method, target, hdrs, status)


@pytest.mark.parametrize(
    "target",
    [
        "/t/{tid}?s=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9",
        "/t/{tid}?s=%FF%FE",
        "/t/{tid}.json?s=%00",
        "/t/%F0%9F%98%80",
        "/snap/%2e%2e%2f%2e%2e%2fetc%2fpasswd.jpg",
        "/k/m1/live/%C2%B2",
    ],
)
def test_known_bad_links_get_a_4xx_or_a_verdict(site: Site, target: str) -> None:
    """Among them the 500 a non-ASCII ``s`` gave (hmac.compare_digest on a str), and a
    superscript digit that str.isdigit() takes for a number."""
    method = "POST" if "/live/" in target else "GET"
    status = site.request(method, target.format(tid=site.ticket["ticket_id"]), b"", {"Host": "x"})
    assert status in (200, 400, 404), status


def test_the_consoles_known_bad_requests_get_a_4xx_or_a_page(site: Site) -> None:
    """An Origin that is not a URL, and weeks given in a superscript digit (both gave 500s)."""
    form = urlencode({"name": "wang", "password": "pw"}).encode()
    hdrs = {"Host": "127.0.0.1", "Origin": "http://[x", "Content-Type": "x"}
    assert site.request("POST", "/console/login", form, hdrs) == 403
    site.ensure_session()
    cookie = {"Host": "127.0.0.1", "Cookie": site.cookie}
    assert site.request("GET", "/console/figures?weeks=%C2%B2", b"", cookie) == 200
