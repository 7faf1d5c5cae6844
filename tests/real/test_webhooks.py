"""WeCom and DingTalk forwarding against a local HTTP server standing in for the bots: the
limit is kept under a burst, nothing is dropped (merged instead), failures are retried, and
DingTalk's signature is right."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from cloud.alerts.engine import AlertEngine
from cloud.alerts.webhooks import WebhookForwarder
from cloud.config import AlertSettings, WebhookSettings
from cloud.store import Store
from tests.conftest import register
from tests.test_alerts_engine import ev, feed, violation

pytestmark = pytest.mark.real


class Bot:
    """A group-bot endpoint: records every request; can fail on demand."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        bot = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if bot.fail_next:
                    bot.fail_next -= 1
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b'{"errcode": 130101, "errmsg": "send too fast"}')
                    return
                bot.requests.append({"path": self.path, "body": body})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b'{"errcode": 0, "errmsg": "ok"}')

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def alerts_received(self) -> list[str]:
        text = ""
        for r in self.requests:
            md = r["body"]["markdown"]
            text += md.get("content") or md.get("text")
        return text


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def setup(tmp_path: Path, bots: list[WebhookSettings]) -> Store:
    settings = AlertSettings(webhooks=bots)
    store = Store(tmp_path / "c.db", engine=AlertEngine(settings, "http://web"))
    store.sites.set("s1", "xianan")
    register(store, "k1", "s1", district="xianan")
    return store


def test_a_burst_keeps_the_limit_and_drops_nothing(tmp_path: Path) -> None:
    bot = Bot()
    cfg = WebhookSettings(
        name="wecom1",
        kind="wecom",
        url=f"{bot.url}/cgi-bin/webhook/send?key=k",
        per_minute=5,
        min_severity="minor",
    )
    store = setup(tmp_path, [cfg])
    cameras = [f"cam{i}" for i in range(40)]
    feed(store, [ev("violation", violation(c), i + 1) for i, c in enumerate(cameras)])
    clock = Clock()
    fw = WebhookForwarder(store, [cfg], clock=clock)
    sent_per_minute = []
    for _minute in range(4):
        n = 0
        for _ in range(30):  # the forwarder's loop, twice a second for a minute
            n += fw.send_due(cfg)
            clock.t += 2
        sent_per_minute.append(n)
    assert all(n <= 5 for n in sent_per_minute), sent_per_minute
    text = bot.alerts_received()
    assert all(f"cam{i} " in text for i in range(40)), "every alert forwarded, none dropped"
    assert store.webhooks.pending("wecom1", 100) == []
    assert len(bot.requests) < 40 and fw.counters["webhook_merged"] > 0, "merged, not queued"
    assert all(len(r["body"]["markdown"]["content"].encode()) <= 4096 for r in bot.requests)


def test_failures_are_retried_and_dingtalk_is_signed(tmp_path: Path) -> None:
    bot = Bot()
    secret = tmp_path / "ding.secret"
    secret.write_text("SECabc123\n")
    cfg = WebhookSettings(
        name="ding", kind="dingtalk", url=f"{bot.url}/robot/send?access_token=t", secret_file=secret
    )
    store = setup(tmp_path, [cfg])
    feed(store, [ev("violation", violation(), 1)])
    clock = Clock()
    fw = WebhookForwarder(store, [cfg], clock=clock)
    bot.fail_next = 2
    assert fw.send_due(cfg) is False  # errcode 130101
    assert fw.send_due(cfg) is False, "waiting out its backoff"
    clock.t += 3
    assert fw.send_due(cfg) is False  # the second failure
    clock.t += 5
    assert fw.send_due(cfg) is True
    (req,) = bot.requests
    assert "animal_in_kitchen" in req["body"]["markdown"]["text"]
    q = parse_qs(urlsplit(req["path"]).query)
    ts = q["timestamp"][0]
    want = base64.b64encode(
        hmac.new(b"SECabc123", f"{ts}\nSECabc123".encode(), hashlib.sha256).digest()
    ).decode()
    assert q["sign"][0] == want and q["access_token"][0] == "t"
    assert fw.counters["webhook_failures"] == 2


def test_bots_filter_by_severity_and_district(tmp_path: Path) -> None:
    bot = Bot()
    only_critical = WebhookSettings(name="c", kind="wecom", url=bot.url, min_severity="critical")
    other_district = WebhookSettings(name="d", kind="wecom", url=bot.url, districts=["chibi"])
    store = setup(tmp_path, [only_critical, other_district])
    feed(
        store,
        [
            ev("violation", violation("cam1", "no_mask"), 1),  # minor
            ev("violation", violation("cam2"), 2),
        ],
    )  # critical
    assert [a for _, a, _ in store.webhooks.pending("c", 10)] and len(
        store.webhooks.pending("c", 10)
    ) == 1
    assert store.webhooks.pending("d", 10) == []
