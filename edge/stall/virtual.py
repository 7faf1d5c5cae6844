"""A virtual scale on a pseudo-terminal: replays bytes (a real capture, or frames made up from a
weight) at a scale's pace, behind a stable path that can vanish and come back like a USB
adapter being unplugged. For the demo, the tests, and an installer's screen check
(``shian-edge scale simulate``)."""

from __future__ import annotations

import contextlib
import os
import pty
import threading
import time
import tty
from pathlib import Path


class VirtualScale:
    def __init__(self, link: Path, data: bytes, frame_end: bytes, rate_hz: float = 10) -> None:
        if not data:
            raise ValueError("nothing to replay")
        self.link = link
        self.data = data
        frames = max(1, data.count(frame_end))
        self.chunk = max(1, len(data) // frames)  # about one frame per write
        self.period = 1.0 / rate_hz
        self.master: int | None = None
        self.slave: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written = 0

    def start(self) -> VirtualScale:
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        tmp = self.link.with_name(self.link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.link)  # atomically, as udev re-points /dev/serial/by-id links
        self._stop.clear()
        self._thread = threading.Thread(target=self._feed, name="virtual-scale", daemon=True)
        self._thread.start()
        return self

    def _feed(self) -> None:
        pos = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            piece = self.data[pos : pos + self.chunk]
            pos = (pos + self.chunk) % len(self.data)
            try:
                if self.master is not None:
                    self.written += os.write(self.master, piece)
            except BlockingIOError:
                pass  # nobody reads: a real scale's bytes would fall on the floor too
            except OSError:
                return
            next_at += self.period
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def vanish(self) -> None:
        """Unplugged: the device and its path are gone."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for fd in (self.master, self.slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = None
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()

    def stop(self) -> None:
        self.vanish()


def made_up_frames(grams: float) -> tuple[bytes, bytes]:
    """A&D-format frames of a steady weight, when no capture is at hand."""
    frame = f"ST,GS,+{grams / 1000:07.2f}kg\r\n".encode()
    return frame * 20, b"\r\n"
