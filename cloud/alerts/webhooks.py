"""Forwarding alerts to WeCom (企业微信) and DingTalk group bots.

A bot takes about 20 messages a minute (DingTalk then throttles for 10 minutes). Alert changes
wait in the ``webhook_queue`` table (written with the change itself, so a restart loses none);
each bot sends at most ``per_minute`` messages in any 60 s, and when changes pile up behind
the limit they go out merged into one message (the latest version of each alert, within the
bots' message size). A failed send (network, HTTP status, or the bot's errcode) is retried with
backoff; nothing is dropped. DingTalk bots with a secret get the signed URL
(``timestamp`` + HMAC-SHA256 of ``timestamp + "\\n" + secret``, base64, URL-encoded).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any

from cloud.config import WebhookSettings
from shared.redact import redact

log = logging.getLogger("shian.webhooks")

MAX_TEXT = 3800  # WeCom markdown content is at most 4096 bytes


def dingtalk_url(url: str, secret: str, now_ms: int) -> str:
    to_sign = f"{now_ms}\n{secret}".encode()
    sign = base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest())
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}timestamp={now_ms}&sign={urllib.parse.quote_plus(sign.decode())}"


_MARKDOWN = str.maketrans(
    {
        "\\": "＼",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "<": "＜",
        ">": "＞",
        "#": "＃",
        "!": "！",
        "|": "｜",
        "~": "～",
        "@": "＠",
        "\n": " ",
        "\r": " ",
        "\t": " ",
    }
)


_LINK = re.compile(r"https?://[A-Za-z0-9.:\[\]-]+(/[A-Za-z0-9._~-]+)*/snap/[0-9a-f-]{36}\.jpg")
"""The only link a bot message carries: the collector's own evidence link."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def md(text: Any) -> str:
    """Text a box chose, safe inside a bot's markdown: credentials out, every character that
    could make markup, a link or an @mention replaced by its full-width form (which reads the
    same), one line, and no bare URL for the chat to turn into a link."""
    return redact(str(text)).translate(_MARKDOWN).replace("://", "：//")


def name(text: Any) -> str:
    """A name (type, site, district, state): as it is when it is a plain name (an underscore
    inside a word makes no markup), else escaped like any text."""
    text = str(text)
    return text if _NAME.fullmatch(text) else md(text)


def line(msg: dict[str, Any]) -> str:
    text = (
        f"**[{name(msg['severity'])}] {name(msg['type'])}** · {name(msg['site'])} "
        f"({name(msg['district'])}) · {name(msg['state'])} · x{int(msg['count'])}\n"
        f"> {md(msg['title'])}"
    )
    if msg.get("due"):
        text += f" · due {md(msg['due'])}"
    if _LINK.fullmatch(str(msg.get("snapshot_url") or "")):
        text += f" · [evidence]({msg['snapshot_url']})"
    return text


def compose(messages: list[dict[str, Any]]) -> tuple[str, int]:
    """One markdown text for as many (latest) alert versions as fit; how many fit."""
    if len(messages) == 1:
        return line(messages[0]), 1
    parts: list[str] = []
    used = 0
    for m in messages:
        piece = line(m)
        if parts and sum(len(p.encode()) + 2 for p in parts) + len(piece.encode()) > MAX_TEXT:
            break
        parts.append(piece)
        used += 1
    return f"### 食安 Shian: {used} alert updates\n\n" + "\n\n".join(parts), used


def post(bot: WebhookSettings, text: str, now_ms: int) -> None:
    """Send one message; raise on any failure."""
    if bot.kind == "dingtalk":
        body = {"msgtype": "markdown", "markdown": {"title": "食安 Shian alert", "text": text}}
        secret = bot.secret()
        url = dingtalk_url(bot.url, secret, now_ms) if secret else bot.url
    else:
        body = {"msgtype": "markdown", "markdown": {"content": text}}
        url = bot.url
    req = urllib.request.Request(
        url,
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        answer = json.loads(r.read() or b"{}")
    if answer.get("errcode", 0) != 0:
        raise RuntimeError(f"{bot.name}: errcode {answer.get('errcode')}: {answer.get('errmsg')}")


class WebhookForwarder:
    def __init__(
        self,
        store: Any,
        bots: list[WebhookSettings],
        clock: Callable[[], float] = time.monotonic,
        holder: str = "collector",
        lease_s: float = 15,
    ) -> None:
        """``holder``/``lease_s``: of the collectors sharing a database, the holder of the
        ``webhooks`` lease posts (so each bot gets each message once)."""
        self.store, self.bots, self.clock = store, bots, clock
        self.holder, self.lease_s = holder, lease_s
        self.sent_at: dict[str, deque[float]] = {b.name: deque() for b in bots}
        self.retry_at: dict[str, float] = {b.name: 0.0 for b in bots}
        self.failures: dict[str, int] = {b.name: 0 for b in bots}
        self.counters = {"webhook_messages": 0, "webhook_failures": 0, "webhook_merged": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)

    def start(self) -> None:
        if self.bots:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)

    def _run(self) -> None:
        renew_at, holding = 0.0, False
        while not self._stop.is_set():
            if time.monotonic() >= renew_at:
                holding = self.store.outgoing.hold_lease("webhooks", self.holder, self.lease_s)
                renew_at = time.monotonic() + self.lease_s / 3
            if not holding:
                self._stop.wait(0.5)
                continue
            for bot in self.bots:
                try:
                    self.send_due(bot)
                except Exception:
                    log.exception("webhook %s", bot.name)
            self._stop.wait(0.5)

    def may_send(self, bot: WebhookSettings, now: float) -> bool:
        window = self.sent_at[bot.name]
        while window and now - window[0] >= 60:
            window.popleft()
        return len(window) < bot.per_minute and now >= self.retry_at[bot.name]

    def send_due(self, bot: WebhookSettings) -> bool:
        """Send one message for this bot if it has changes waiting and the limit allows."""
        now = self.clock()
        if not self.may_send(bot, now):
            return False
        rows = self.store.webhooks.pending(bot.name, 200)
        if not rows:
            return False
        latest: dict[str, dict[str, Any]] = {}
        for _id, alert, text in rows:
            latest[alert] = json.loads(text)  # a later version of an alert replaces the earlier
        text, used = compose(list(latest.values()))
        used_alerts = set(list(latest)[:used])
        ids = [i for i, alert, _ in rows if alert in used_alerts]
        try:
            post(bot, text, int(time.time() * 1000))
        except Exception as exc:  # network, HTTP status, errcode: keep them, retry later
            self.failures[bot.name] += 1
            self.counters["webhook_failures"] += 1
            delay = min(300.0, 2.0 ** self.failures[bot.name])
            self.retry_at[bot.name] = now + delay
            self.store.webhooks.failed(ids)
            log.warning("webhook %s failed (%s); retry in %.0f s", bot.name, exc, delay)
            return False
        self.failures[bot.name] = 0
        self.sent_at[bot.name].append(now)
        self.store.webhooks.sent(ids)
        self.counters["webhook_messages"] += 1
        if len(ids) > 1:
            self.counters["webhook_merged"] += len(ids)
        return True
