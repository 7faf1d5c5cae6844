"""A network camera stand-in: a real HTTP server streaming MJPEG (multipart/x-mixed-replace),
as many IP cameras do, that can be switched off and on again on the same port."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np


class MjpegCamera:
    def __init__(self, frame: np.ndarray, port: int = 0, fps: float = 10) -> None:
        ok, jpg = cv2.imencode(".jpg", frame)
        assert ok
        self.jpeg = jpg.tobytes()
        self.fps = fps
        self.port = port
        self.server: ThreadingHTTPServer | None = None
        self.live = threading.Event()

    def start(self) -> MjpegCamera:
        cam = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while cam.live.is_set():
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(cam.jpeg)
                        )
                        self.wfile.write(cam.jpeg + b"\r\n")
                        time.sleep(1 / cam.fps)  # the camera's frame rate
                except OSError:
                    pass
                self.close_connection = True

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.live.set()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"

    def stop(self) -> None:
        """Power off: streams end, and nothing answers on the port."""
        self.live.clear()
        if self.server is not None:
            self.server.shutdown()
            self.server.socket.shutdown(socket.SHUT_RDWR)
            self.server.server_close()
            self.server = None
