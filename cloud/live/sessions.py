"""Who watches what, and so which boxes send which camera (the on-demand rule).

A viewer opening a public view gets a token; the first viewer of a view makes a session (a
random stream id and publish key) and sends its box ``cmd/live`` start. While viewers fetch
(each playlist and segment request passes :meth:`LiveSessions.allowed`, asked by the media
server), the session lives and the box's lease is renewed; when the last viewer has fetched
nothing for ``viewer_timeout_s`` and ``linger_s`` more has passed, the box is told to stop.
The regulator's switch and a camera's public hours end sessions at the next tick (1 s).
State is in memory: one collector serves a media server's viewers (docs/live.md).
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cloud.config import LiveSettings
from cloud.db import Db
from cloud.live.views import View, camera_online, device_online, site_live, views
from shared.live import LiveCommand

log = logging.getLogger("shian.live")

NOTICES = {
    "off": ("监管部门已暂停本单位的直播", "The regulator has paused this kitchen's live views"),
    "hours": ("现在不是公开时段", "Outside the kitchen's public hours"),
    "offline": ("摄像头暂时离线", "The camera is offline now"),
    "full": ("观看人数已满，请稍后再试", "Too many viewers now; please try again later"),
    "ended": ("直播已结束", "The live view has ended"),
    "unavailable": ("直播暂不可用", "Live views are not available"),
}
TOKEN = re.compile(r"^[0-9a-f]{32}$")
HLS_URI = re.compile(r"^/hls/([0-9a-f]{32})/([a-z0-9]{16,32})(?:\.m3u8|-\d{1,12}\.ts)$")
"""What a viewer's player fetches: the playlist and its segments (nginx-rtmp's names)."""
ENDED_KEPT_S = 120.0

Send = Callable[[str, LiveCommand], None]
"""(device, command): publish a ``cmd/live`` to a box."""


@dataclass
class Answer:
    state: Literal["starting", "live", "notice"]
    notice: str = ""
    token: str = ""
    mode: str = ""  # hls | jpeg, once live
    stream: str = ""

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.notice:
            zh, en = NOTICES[self.notice]
            out.update(notice=self.notice, zh=zh, en=en)
        if self.token:
            out["token"] = self.token
        if self.state == "live":
            out["mode"] = self.mode
            if self.mode == "hls":
                out["play"] = f"/hls/{self.token}/{self.stream}.m3u8"
            else:
                out["frame"] = f"/live/{self.token}/frame.jpg"
        return out


@dataclass
class Session:
    view: View
    site: str
    stream: str
    key: str
    created: float
    renewed: float
    mode: str = ""  # "" until the box's stream begins: hls (published) or jpeg (a frame)
    viewers: dict[str, float] = field(default_factory=dict)  # token -> last fetch
    empty_since: float | None = None
    frame: bytes = b""


class LiveSessions:
    def __init__(
        self, cfg: LiveSettings, db: Db, send: Send, clock: Callable[[], float] = time.time
    ) -> None:
        self.cfg, self.db, self.send, self.clock = cfg, db, send, clock
        self._lock = threading.Lock()
        self.sessions: dict[tuple[str, int], Session] = {}
        self._streams: dict[str, Session] = {}
        self._tokens: dict[str, Session] = {}
        self._ended: dict[str, tuple[str, float]] = {}  # token -> (notice, when)
        self._addresses: dict[str, str] = {}  # token -> the viewer's address
        self.counters = {"live_sessions": 0, "live_refused": 0, "live_frames_refused": 0}

    # -- viewers ------------------------------------------------------------------------------
    def watch(self, site: str, n: int, address: str = "") -> Answer | None:
        """A viewer at ``address`` opens view ``n`` of ``site``: a token and the state, a
        notice, or None when the site has no such view."""
        now = self.clock()
        live = site_live(self.db, site)
        if not live.exists:
            return None
        view = next((v for v in views(self.db, site) if v.n == n), None)
        if view is None:
            return None
        notice = self._notice(site, view, live.off, now)
        if notice:
            self.counters["live_refused"] += 1
            return Answer("notice", notice)
        cap = live.cap or self.cfg.max_viewers_per_site
        with self._lock:
            mine = sum(1 for a in self._addresses.values() if a == address)
            if self._watching(site, now) >= cap or mine >= self.cfg.max_views_per_address:
                self.counters["live_refused"] += 1
                return Answer("notice", "full")
            s = self.sessions.get((site, n))
            if s is None or s.view != view:
                if s is not None:
                    self._end(s, "ended")
                s = self._open(site, view, now)
            token = secrets.token_hex(16)
            s.viewers[token], s.empty_since = now, None
            self._tokens[token], self._addresses[token] = s, address
            return self._answer(s, token)

    def _notice(self, site: str, view: View, off: bool, now: float) -> str:
        if not self.cfg.rtmp_url:
            return "unavailable"
        if off:
            return "off"
        if not view.in_hours(now):
            return "hours"
        if not device_online(self.db, view.device) or not camera_online(
            self.db, site, view.device, view.camera.camera
        ):
            return "offline"
        return ""

    def listing(self, site: str, now: float | None = None) -> list[tuple[View, str]]:
        """Each view with its notice as the page is drawn (``""``: it can be watched)."""
        now = self.clock() if now is None else now
        live = site_live(self.db, site)
        return [(v, self._notice(site, v, live.off, now)) for v in views(self.db, site)]

    def notices(self, site: str, now: float | None = None) -> dict[int, str]:
        return {v.n: notice for v, notice in self.listing(site, now)}

    def poll(self, token: str) -> Answer:
        """The state of a viewer's session (the page asks while it starts, and after an
        error of its player)."""
        with self._lock:
            s = self._tokens.get(token)
            if s is None:
                return Answer("notice", self._ended.get(token, ("ended", 0.0))[0])
            s.viewers[token] = self.clock()
            return self._answer(s, token)

    def allowed(self, uri: str) -> bool:
        """The media server asks before serving a playlist or segment: a live token of that
        stream. Each answer counts as the viewer still watching."""
        m = HLS_URI.match(uri.split("?", 1)[0])
        if m is None:
            return False
        with self._lock:
            s = self._tokens.get(m.group(1))
            if s is None or s.stream != m.group(2) or s.mode != "hls":
                return False
            s.viewers[m.group(1)] = self.clock()
            return True

    def frame_for(self, token: str) -> bytes | None:
        with self._lock:
            s = self._tokens.get(token)
            if s is None or s.mode != "jpeg" or not s.frame:
                return None
            s.viewers[token] = self.clock()
            return s.frame

    def leave(self, token: str) -> None:
        with self._lock:
            s = self._tokens.pop(token, None)
            self._addresses.pop(token, None)
            if s is not None:
                s.viewers.pop(token, None)

    # -- the media server and the box ---------------------------------------------------------
    def published(self, stream: str, key: str) -> bool:
        """The media server asks whether a box may publish ``stream`` (its ``on_publish``)."""
        with self._lock:
            s = self._streams.get(stream)
            if s is None or not hmac.compare_digest(s.key, key):
                return False
            s.mode = "hls"
            return True

    def unpublished(self, stream: str) -> None:
        """The box's stream ended at the media server: starting again at the next renewal."""
        with self._lock:
            s = self._streams.get(stream)
            if s is not None and s.mode == "hls":
                s.mode, s.created = "", self.clock()

    def frame(self, device: str, stream: str, jpeg: bytes) -> str | None:
        """A JPEG frame from a box; why it is refused, or None."""
        with self._lock:
            s = self._streams.get(stream)
            if s is None or s.view.device != device:
                self.counters["live_frames_refused"] += 1
                return "no such stream of this device"
            s.frame, s.mode = jpeg, s.mode or "jpeg"
            return None

    # -- time ---------------------------------------------------------------------------------
    def tick(self) -> None:
        """Every second: drop viewers gone quiet, end what must end, renew leases."""
        now = self.clock()
        with self._lock:
            for token, (_, when) in list(self._ended.items()):
                if now - when > ENDED_KEPT_S:
                    del self._ended[token]
            if not self.sessions:
                return
        off = {r["site"] for r in self.db.query("SELECT site FROM sites WHERE live_off = 1")}
        with self._lock:
            for s in list(self.sessions.values()):
                self._step(s, now, s.site in off)

    def _step(self, s: Session, now: float, off: bool) -> None:
        for token, seen in list(s.viewers.items()):
            if now - seen > self.cfg.viewer_timeout_s:
                del s.viewers[token]
                self._tokens.pop(token, None)
                self._addresses.pop(token, None)
        if off or not s.view.in_hours(now):
            self._end(s, "off" if off else "hours")
        elif not s.mode and now - s.created > self.cfg.start_timeout_s:
            self._end(s, "offline")
        elif not s.viewers and now - (s.empty_since or now) >= self.cfg.linger_s:
            self._end(s, "ended")
        else:
            if not s.viewers and s.empty_since is None:
                s.empty_since = now
            if now - s.renewed >= self.cfg.lease_s / 3:
                s.renewed = now
                self._command(s, "start")

    # -- inside the lock ----------------------------------------------------------------------
    def _watching(self, site: str, now: float) -> int:
        return sum(len(s.viewers) for (st, _), s in self.sessions.items() if st == site)

    def _open(self, site: str, view: View, now: float) -> Session:
        stream = secrets.token_hex(12)
        s = Session(view, site, stream, secrets.token_hex(16), now, now)
        self.sessions[(site, view.n)] = self._streams[stream] = s
        self.counters["live_sessions"] += 1
        log.info("live view %s/%d: asking %s to send", site, view.n, view.device)
        self._command(s, "start")
        return s

    def _end(self, s: Session, notice: str) -> None:
        self.sessions.pop((s.site, s.view.n), None)
        self._streams.pop(s.stream, None)
        for token in s.viewers:
            self._tokens.pop(token, None)
            self._addresses.pop(token, None)
            self._ended[token] = (notice, self.clock())
        log.info("live view %s/%d ended (%s)", s.site, s.view.n, notice)
        self._command(s, "stop")

    def _command(self, s: Session, action: Literal["start", "stop"]) -> None:
        url = f"{self.cfg.rtmp_url.rstrip('/')}/{s.stream}?k={s.key}"
        cmd = LiveCommand(
            action=action,
            camera=s.view.camera.camera,
            stream=s.stream,
            url=url if action == "start" else "",
            lease_s=self.cfg.lease_s,
        )
        try:
            self.send(s.view.device, cmd)
        except Exception:  # the broker away: the next renewal tries again
            log.warning("live command to %s not sent", s.view.device, exc_info=True)

    def _answer(self, s: Session, token: str) -> Answer:
        if not s.mode:
            return Answer("starting", token=token)
        return Answer("live", token=token, mode=s.mode, stream=s.stream)
