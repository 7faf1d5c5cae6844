"""A stand-in IP camera for demos, tests and benchmarks: GStreamer's RTSP server serving a
moving H.264 test pattern (Constrained Baseline, 25 fps, a key frame every second) at
``rtsp://127.0.0.1:{port}/cam``, as a kitchen camera's substream would.

GStreamer comes from Debian (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-
ugly for x264), so the server runs under the system's Python (``/usr/bin/python3``), not the
project's venv: :class:`TestCamera` starts it as a child process.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"
PIPELINE = (
    "( videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate=25/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bitrate={kbps}"
    " ! video/x-h264,profile=constrained-baseline ! rtph264pay name=pay0 pt=96"
    " config-interval=1 )"
)


def available() -> str | None:
    """Why the test camera cannot run here, or None."""
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', "
        "'1.0'); from gi.repository import Gst; Gst.init(None); "
        "assert Gst.ElementFactory.find('x264enc'), 'x264enc'"
    )
    if not Path(SYSTEM_PYTHON).exists():
        return f"no {SYSTEM_PYTHON}"
    got = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True)
    if got.returncode != 0:
        return (
            "GStreamer's RTSP server is not installed (Debian: python3-gi "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-ugly): "
            + (got.stderr.strip().splitlines() or ["?"])[-1]
        )
    return None


class TestCamera:
    __test__ = False  # not a pytest class

    def __init__(self, width: int = 640, height: int = 360, kbps: int = 800) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.size, self.kbps = (width, height), kbps
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        w, h = self.size
        cmd = [SYSTEM_PYTHON, __file__, str(self.port), str(w), str(h), str(self.kbps)]
        from shared.procs import die_with_parent  # here: this file also runs alone

        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=die_with_parent
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # "ready" once the server listens
        if line.strip() != b"ready":
            err = self._proc.stderr.read().decode() if self._proc.stderr else ""
            self.stop()
            raise RuntimeError(f"the test camera did not start: {err.strip()[-400:]}")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        from shared.procs import end

        if self._proc is not None:
            end(self._proc)
            self._proc = None


def _serve(port: int, width: int, height: int, kbps: int) -> None:  # pragma: no cover
    import gi  # type: ignore[import-not-found]

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer  # type: ignore[import-not-found]

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE.format(w=width, h=height, kbps=kbps))
    factory.set_shared(True)  # one encoder for every client, as a camera has
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":  # pragma: no cover - run by SYSTEM_PYTHON
    port, width, height, kbps = (int(a) for a in sys.argv[1:5])
    _serve(port, width, height, kbps)
