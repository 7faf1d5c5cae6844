"""A serial barcode scanner at the kitchen's door (``[ledger] scanner_port``): in serial mode it
sends each code it reads as a line (CR or LF) on a tty, where a USB one in keyboard mode would
type it into the screen's scanner field. Each line is a delivery to record; what it came to
(recorded, or refused and why) is ``last`` for the hall screen.

Lines are bytes off a wire: over ``MAX_LINE`` or not text, they are refused whole. A port that
goes away is opened again every few seconds, as the scale's is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("shian.ledger")
MAX_LINE = 512
REOPEN_S = 3.0


class Scanner:
    def __init__(self, port: str, on_code: Callable[[str], str], baudrate: int = 9600) -> None:
        """``on_code(code)`` records a delivery and says what it recorded (or raises
        ValueError with the reason)."""
        self.port, self.on_code, self.baudrate = port, on_code, baudrate
        self.last: dict[str, Any] = {}
        self.connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shian-scanner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                with serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.5) as p:
                    log.info("barcode scanner on %s", self.port)
                    self.connected = True
                    self._read(p)
            except (OSError, serial.SerialException) as exc:
                self.connected = False
                log.warning("barcode scanner %s: %s", self.port, exc)
                self._stop.wait(REOPEN_S)

    def _read(self, port: Any) -> None:
        buf = b""
        while not self._stop.is_set():
            buf += port.read(max(1, port.in_waiting))
            while (cut := min((i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0),
                              default=-1)) >= 0:  # fmt: skip
                line, buf = buf[:cut], buf[cut + 1 :]
                if line.strip():
                    self.handle(line)
            if len(buf) > MAX_LINE:  # no end in sight: not a code
                self._said(False, f"a line over {MAX_LINE} bytes, dropped")
                buf = b""

    def handle(self, line: bytes) -> None:
        """One scanned line: recorded, or refused with the reason."""
        try:
            code = line.decode("utf-8").strip()
            if len(code) > MAX_LINE or not code.isprintable():
                raise ValueError("not a code (not printable text)")
            self._said(True, self.on_code(code))
        except (ValueError, UnicodeDecodeError) as exc:  # ScanError is a ValueError
            self._said(False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:  # the box's own trouble (a database error): said, not fatal
            log.exception("scanned code not recorded")
            self._said(False, f"not recorded: {type(exc).__name__}")

    def _said(self, ok: bool, message: str) -> None:
        self.last = {"at": time.time(), "ok": ok, "message": message[:200]}
        (log.info if ok else log.warning)("scanned: %s", message[:200])
