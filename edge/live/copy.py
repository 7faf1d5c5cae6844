"""Copy a camera's H.264 substream to the media server with FFmpeg, without decoding it.

``ffmpeg -c:v copy`` repackages the camera's own packets (RTSP in, RTMP/FLV out): about one
per cent of a core on the box, against tens of per cent to re-encode (docs/benchmarks.md).
FFmpeg is a Debian package on the box; without it, or for a stream that is not H.264, the
live view falls back to JPEG frames (``edge.live.jpeg``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import threading
from collections import deque

from shared.procs import die_with_parent, end
from shared.redact import redact

log = logging.getLogger("shian.live")

PROBE_TIMEOUT_S = 10.0


def _input_args(source: str) -> list[str]:
    transport = ["-rtsp_transport", "tcp"] if source.startswith(("rtsp://", "rtsps://")) else []
    return [*transport, "-i", source]


def probe_codec(source: str) -> str:
    """The codec of the source's first video stream (``h264``, ``hevc``, ...), or ``""``
    when FFmpeg is missing or the source does not answer."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        return ""
    cmd = [ffprobe, "-v", "error", *_input_args(source)[:-2], "-select_streams", "v:0"]
    cmd += ["-show_entries", "stream=codec_name", "-of", "csv=p=0", source]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("probing %s failed: %s", redact(source), exc)
        return ""
    return out.stdout.decode(errors="replace").strip().splitlines()[0] if out.stdout else ""


class CopySender:
    """One FFmpeg process pushing one camera to one RTMP URL."""

    mode = "copy"

    def __init__(self, source: str, url: str) -> None:
        self.source, self.url = source, url
        self._proc: subprocess.Popen[bytes] | None = None
        self.sent_bytes = 0
        self._errors: deque[str] = deque(maxlen=5)  # its last lines of errors

    @staticmethod
    def available() -> bool:
        return shutil.which("ffmpeg") is not None

    def start(self) -> None:
        ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
        cmd += [*_input_args(self.source), "-map", "0:v:0", "-an", "-c:v", "copy"]
        cmd += ["-progress", "pipe:1", "-stats_period", "1", "-f", "flv", self.url]
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,  # a killed agent leaves no video flowing
        )
        threading.Thread(target=self._progress, args=(self._proc,), daemon=True).start()
        threading.Thread(target=self._drain, args=(self._proc,), daemon=True).start()

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        """Read its errors as they come: a full pipe would stop FFmpeg mid-stream."""
        assert proc.stderr is not None
        for line in proc.stderr:
            self._errors.append(line.decode(errors="replace").strip())

    def _progress(self, proc: subprocess.Popen[bytes]) -> None:
        """FFmpeg's own count of the bytes it sent (``total_size`` in its progress lines)."""
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(b"total_size="):
                with contextlib.suppress(ValueError):
                    self.sent_bytes = int(line.split(b"=", 1)[1])

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def why(self) -> str:
        """Why FFmpeg ended (its last line of errors, without credentials)."""
        if self._proc is None or self._proc.poll() is None:
            return ""
        last = self._errors[-1] if self._errors else ""
        return redact(f"ffmpeg exited {self._proc.returncode}: {last}")

    def stop(self) -> None:
        if self._proc is not None:
            end(self._proc)
