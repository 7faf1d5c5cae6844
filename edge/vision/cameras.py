"""Cameras through OpenCV: RTSP/HTTP URLs, V4L2 devices, video files (looped), image folders.

One capture thread per camera keeps only the latest frame. A camera that stops delivering
frames (an RTSP stream that stalls without an error is the common case) is released and
reopened with backoff, and reported offline once per outage and online when frames return.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.worker import Worker
from shared.mqtt import Backoff
from shared.redact import redact

log = logging.getLogger("shian.camera")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, at the camera's detect size
    at: float  # time.monotonic() when captured
    n: int  # frame counter of this camera


class ImageFolder:
    """A folder of still images as a looping source (cv2.VideoCapture's interface, in part)."""

    def __init__(self, folder: Path) -> None:
        try:
            self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        except OSError:
            self.files = []
        self.i = 0

    def isOpened(self) -> bool:
        return bool(self.files)

    def read(self) -> tuple[bool, Any]:
        if not self.files:
            return False, None
        img = cv2.imread(str(self.files[self.i % len(self.files)]))
        self.i += 1
        return img is not None, img

    def get(self, _prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.files = []


def open_source(source: str) -> tuple[Any, bool]:
    """(capture, is_file): ``file:PATH`` or a path to a video (looped), ``images:DIR``,
    ``/dev/videoN`` or a device number (V4L2), or a URL (rtsp://, http://)."""
    if source.startswith("images:"):
        return ImageFolder(Path(source[7:])), True
    path = source[5:] if source.startswith("file:") else source
    if source.startswith("file:") or (Path(path).is_file() and not path.startswith("/dev/")):
        return cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1]), True
    if source.isdigit():
        return cv2.VideoCapture(int(source), cv2.CAP_V4L2), False
    if source.startswith("/dev/video"):
        return cv2.VideoCapture(source, cv2.CAP_V4L2), False
    # network streams: give up on a connect or a read after 5 s instead of FFmpeg's 30
    # one decoder thread per camera: nine cameras at 5 fps need no more, and FFmpeg's default
    # (a thread per core, each with its own frame buffers) costs memory on a small box
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        5000,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        5000,
        cv2.CAP_PROP_N_THREADS,
        1,
    ]
    return cv2.VideoCapture(source, cv2.CAP_FFMPEG, params), False


StateFn = Callable[[str, str, dict[str, Any]], None]
"""(camera, "offline" | "online", details) for the camera events."""


class Camera(Worker):
    def __init__(
        self,
        name: str,
        source: str,
        size: tuple[int, int],
        fps: float,
        stall_timeout_s: float = 5.0,
        on_state: StateFn | None = None,
    ) -> None:
        self.name, self.source, self.size, self.fps = name, source, size, fps
        self.stall_timeout_s = stall_timeout_s
        self.on_state = on_state
        self.latest: Frame | None = None
        self.online = False
        self.counters = {"frames": 0, "reopens": 0}
        self.started = time.monotonic()
        self.why = ""
        self.reported = False  # offline already reported for this outage
        self._lock = threading.Lock()
        super().__init__(f"camera-{name}")

    def _run(self) -> None:
        backoff = Backoff(1.0, 30.0)
        while not self._stop.is_set():
            self.alive_at = time.monotonic()
            try:
                cap, is_file = open_source(self.source)
                if cap.isOpened():
                    self.why = self._read(cap, is_file)
                else:
                    self.why = f"cannot open {redact(self.source)}"
                cap.release()
            except Exception as exc:  # a camera never takes the agent down
                self.why = redact(f"{type(exc).__name__}: {exc}")
                log.debug("camera %s", self.name, exc_info=True)
            if self._stop.is_set():
                return
            self.counters["reopens"] += 1
            if self.latest is not None and time.monotonic() - self.latest.at < 60:
                backoff.reset()
            self._stop.wait(backoff.next_delay())

    def check(self, now: float) -> None:
        """The watchdog (called by the kitchen loop): no frame for ``stall_timeout_s`` means
        offline, whether the capture failed or a read is stuck in the network."""
        last = self.latest.at if self.latest else self.started
        with self._lock:
            if (
                self.online or (self.latest is None and not self.reported)
            ) and now - last > self.stall_timeout_s:
                self.online, self.reported = False, True
                reason = self.why or "no frames"
            else:
                return
        log.warning("camera %s offline: %s", self.name, reason)
        if self.on_state:
            self.on_state(self.name, "offline", {"reason": reason})

    def _read(self, cap: Any, is_file: bool) -> str:
        """Read until the camera fails; return why it stopped."""
        period = 1.0 / (cap.get(cv2.CAP_PROP_FPS) or self.fps) if is_file else 0.0
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.alive_at = time.monotonic()
            ok, img = cap.read()
            if (not ok or img is None) and is_file and not isinstance(cap, ImageFolder):
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop the file
                ok, img = cap.read()
            if not ok or img is None:
                return "no frames (stream ended, device gone or file unreadable)"
            if img.shape[1] != self.size[0] or img.shape[0] != self.size[1]:
                img = cv2.resize(img, self.size, interpolation=cv2.INTER_AREA)
            self.counters["frames"] += 1
            self.latest = Frame(img, time.monotonic(), self.counters["frames"])
            with self._lock:
                came_back = not self.online
                self.online, self.reported = True, False
            if came_back:
                log.info("camera %s online", self.name)
                if self.on_state:
                    self.on_state(self.name, "online", {})
            if period:  # a file plays at its own pace, not as fast as it decodes
                next_at += period
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        return "stopped"
