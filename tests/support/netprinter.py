"""A network receipt printer stand-in: a real TCP server on a free local port that takes
ESC/POS jobs, answers DLE EOT status requests like a printer, and can run out of paper or
vanish in the middle of a job (and come back on the same port), or take a whole job and then
never answer (its reply lost)."""

from __future__ import annotations

import contextlib
import socket
import threading

PAPER_OK = 0x12
PAPER_END = 0x72


class NetPrinter:
    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.jobs: list[bytes] = []  # what each connection sent, status requests removed
        self.paper = True
        self.vanish_after: int | None = None  # bytes of one job, then gone
        self.mute_after_job = False  # takes the job, then answers no status request
        self._srv: socket.socket | None = None
        self._lock = threading.Lock()
        self.connections = 0

    def start(self) -> NetPrinter:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(4)
        self.port = srv.getsockname()[1]
        self._srv = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()
        return self

    def stop(self) -> None:
        srv, self._srv = self._srv, None
        if srv is not None:
            with contextlib.suppress(OSError):  # wakes the blocked accept; stops listening
                srv.shutdown(socket.SHUT_RDWR)
            srv.close()

    def _accept(self, srv: socket.socket) -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        job = bytearray()
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                i = 0
                while i < len(data):
                    if data[i] == 0x10 and data[i + 1 : i + 2] == b"\x04" and i + 2 < len(data):
                        if not (self.mute_after_job and job):
                            conn.sendall(bytes([PAPER_OK if self.paper else PAPER_END]))
                        i += 3
                        continue
                    job.append(data[i])
                    i += 1
                if self.vanish_after is not None and len(job) >= self.vanish_after:
                    del job[self.vanish_after :]  # power lost: the rest never reached the paper
                    self.vanish_after = None
                    self.stop()  # the printer is gone: no new connections either
                    conn.shutdown(socket.SHUT_RDWR)
                    break
        with self._lock:
            self.jobs.append(bytes(job))
