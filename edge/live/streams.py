"""The box's live views: start on the cloud's command, keep while it renews, stop when the
lease runs out or on ``stop``.

Commands arrive on ``cmd/live`` (``shared.live.LiveCommand``) and are handled in a thread of
their own (probing a camera may take seconds; the sync loop must not wait). A stream is
copied as H.264 when the camera has a ``live_source`` whose codec FFmpeg reports as H.264,
else sent as JPEG frames. Every start and stop is an event (``live``): the record that video
left the box, when and why.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from edge.config import CameraSettings
from edge.live.copy import CopySender, probe_codec
from edge.live.jpeg import JpegSender
from shared.live import LiveCommand

log = logging.getLogger("shian.live")


class Sender(Protocol):
    mode: str

    def start(self) -> None: ...
    def alive(self) -> bool: ...
    def why(self) -> str: ...
    def stop(self) -> None: ...
    @property
    def sent_bytes(self) -> int: ...


@dataclass
class Stream:
    camera: str
    stream: str
    sender: Sender
    until: float  # monotonic


Emit = Callable[[str, dict[str, Any]], object]
FramePublisher = Callable[[str, bytes], bool]
"""(stream id, JPEG) -> published."""


class LiveStreams:
    def __init__(
        self,
        cameras: list[CameraSettings],
        latest: Callable[[str], Any],
        online: Callable[[str], bool],
        publish: FramePublisher,
        emit: Emit,
    ) -> None:
        """``latest(camera)``: the kitchen's latest frame; ``online(camera)``: whether the
        kitchen gets frames from it."""
        self.cameras = {c.name: c for c in cameras}
        self.latest, self.online, self.publish, self.emit = latest, online, publish, emit
        self.streams: dict[str, Stream] = {}  # by camera
        self.codecs: dict[str, str] = {}  # a camera's probed live_source codec
        self.counters = {"live_started": 0, "live_refused": 0}
        self._q: queue.SimpleQueue[LiveCommand | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="shian-live", daemon=True)

    def offer(self, timezone_offset_h: float) -> dict[str, Any]:
        """The ``live_offer`` event's data: which cameras the site shows, when, and how."""
        return {
            "cameras": [
                {
                    "camera": c.name,
                    "label": c.public_label,
                    "public": c.public,
                    "hours": [w.model_dump() for w in c.public_hours],
                    "mode": "copy" if c.live_source else "jpeg",
                }
                for c in self.cameras.values()
            ],
            "timezone_offset_h": timezone_offset_h,
        }

    def all_counters(self) -> dict[str, int]:
        return {**self.counters, "live_streams": len(self.streams)}

    # -- commands -----------------------------------------------------------------------------
    def on_command(self, _rest: str, payload: bytes) -> None:
        """Check a command where it enters (a bad one raises: the sync loop counts it)."""
        try:
            cmd = LiveCommand.model_validate_json(payload)
        except ValidationError as exc:
            msg = exc.errors(include_url=False)[0]["msg"]
            raise ValueError(f"bad live command: {msg}") from None
        if cmd.camera not in self.cameras:
            raise ValueError(f"live command for unknown camera {cmd.camera!r}")
        self._q.put(cmd)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(10)
        for s in list(self.streams.values()):
            self._end(s, "stopped", "the agent stopped")

    def _run(self) -> None:
        while True:
            try:
                cmd = self._q.get(timeout=1.0)
            except queue.Empty:
                cmd = None
            else:
                if cmd is None:
                    return
            try:
                if cmd is not None:
                    self.handle(cmd)
                self.check(time.monotonic())
            except Exception:  # a live view never takes the box down
                log.exception("live view failed")

    def handle(self, cmd: LiveCommand) -> None:
        now = time.monotonic()
        current = self.streams.get(cmd.camera)
        if cmd.action == "stop":
            if current is not None and current.stream == cmd.stream:
                self._end(current, "stopped", "nobody watches")
            return
        if current is not None and current.stream == cmd.stream and current.sender.alive():
            current.until = now + cmd.lease_s  # renewed
            return
        if current is not None:
            self._end(current, "stopped", "replaced by a new stream")
        sender = self._sender(cmd)
        if sender is None:
            return
        sender.start()
        self.streams[cmd.camera] = Stream(cmd.camera, cmd.stream, sender, now + cmd.lease_s)
        self.counters["live_started"] += 1
        log.info("live view of %s started (%s)", cmd.camera, sender.mode)
        self._event(cmd.camera, cmd.stream, "started", sender.mode)

    def _sender(self, cmd: LiveCommand) -> Sender | None:
        cam = self.cameras[cmd.camera]
        if not cam.public:
            self._refuse(cmd, "the camera is not public on this box")
            return None
        source = cam.live_source
        if source and cmd.url and CopySender.available():
            codec = self.codecs.get(cmd.camera) or probe_codec(source)
            if codec:
                self.codecs[cmd.camera] = codec
            else:  # the substream does not answer: the frames the kitchen has may still do
                log.warning("live view of %s: its live_source does not answer", cmd.camera)
            if codec == "h264":
                return CopySender(source, cmd.url)
        if not self.online(cmd.camera):
            self._refuse(cmd, "the camera is offline")
            return None
        camera, stream = cmd.camera, cmd.stream
        return JpegSender(
            lambda: self.latest(camera), lambda data: self.publish(stream, data), cam.live_jpeg_fps
        )

    def _refuse(self, cmd: LiveCommand, reason: str) -> None:
        self.counters["live_refused"] += 1
        log.warning("live view of %s refused: %s", cmd.camera, reason)
        self._event(cmd.camera, cmd.stream, "failed", "jpeg", reason)

    def check(self, now: float) -> None:
        """End streams whose lease ran out, and those whose sender died."""
        for s in list(self.streams.values()):
            if not s.sender.alive():
                self._end(s, "failed", s.sender.why() or "the sender ended")
            elif now > s.until:
                self._end(s, "stopped", "the lease ran out")

    def _end(self, s: Stream, state: str, reason: str) -> None:
        s.sender.stop()
        self.streams.pop(s.camera, None)
        log.info("live view of %s %s: %s", s.camera, state, reason)
        self._event(s.camera, s.stream, state, s.sender.mode, reason, s.sender.sent_bytes)

    def _event(
        self, camera: str, stream: str, state: str, mode: str, reason: str = "", sent: int = 0
    ) -> None:
        data = {"camera": camera, "stream": stream, "state": state, "mode": mode}
        try:
            self.emit("live", {**data, "reason": reason[:256], "sent_bytes": sent})
        except Exception as exc:  # a full disk: the view still ends
            log.warning("live event not queued: %s", exc)
