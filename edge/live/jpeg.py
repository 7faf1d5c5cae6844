"""The fallback live view: JPEG frames at a low rate over MQTT (QoS 0), for a camera with
no H.264 stream. The frames are the ones the kitchen already decodes for detection, so this
costs one small JPEG encode a second, not a decode."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import cv2

MAX_WIDTH = 640
QUALITY = 70

Latest = Callable[[], Any]
"""The camera's latest frame (with ``.image`` and ``.n``), or None."""
Publish = Callable[[bytes], bool]
"""Publish one frame; False when there is no broker session."""


class JpegSender:
    mode = "jpeg"

    def __init__(self, latest: Latest, publish: Publish, fps: float) -> None:
        self.latest, self.publish, self.period = latest, publish, 1.0 / fps
        self.sent_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shian-live-jpeg", daemon=True)

    @staticmethod
    def available() -> bool:
        return True

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def why(self) -> str:
        return ""

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        last_seq = -1
        next_at = time.monotonic()
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at += self.period
            frame = self.latest()
            if frame is None or frame.n == last_seq:
                continue
            last_seq = frame.n
            data = encode(frame.image)
            if self.publish(data):
                self.sent_bytes += len(data)


def encode(image: Any) -> bytes:
    h, w = image.shape[:2]
    if w > MAX_WIDTH:
        image = cv2.resize(image, (MAX_WIDTH, h * MAX_WIDTH // w), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    return bytes(buf) if ok else b""
