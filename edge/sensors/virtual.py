"""A virtual Modbus RTU sensor for the demo, the tests and an installer's check: pymodbus's own
serial server, holding a profile's registers, on one end of a null-modem pair of
pseudo-terminals; the box reads the other end's path, as it would a USB RS-485 adapter.

The null modem between them can go silent (a sensor unplugged or dead) or corrupt the replies
(noise on the line: CRC errors), and come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import select
import threading
import time
import tty
from pathlib import Path
from typing import Any

from edge.sensors.profiles import SensorProfile


class NullModem:
    """Two pseudo-terminals whose masters are joined: what one side writes, the other reads."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.silent = False
        self.corrupt = False
        self._stop = threading.Event()
        self.a_master, a_slave = pty.openpty()
        self.b_master, b_slave = pty.openpty()
        for fd in (a_slave, b_slave):
            tty.setraw(fd)
        self._slaves = (a_slave, b_slave)
        self.device_path = os.ttyname(a_slave)  # the sensor's end
        tmp = link.with_name(link.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(os.ttyname(b_slave))
        tmp.replace(link)  # the box's end, behind a stable path
        self._thread = threading.Thread(target=self._run, name="null-modem", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.a_master, self.b_master], [], [], 0.1)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return
                if fd == self.b_master:  # a request from the box
                    if not self.silent:
                        os.write(self.a_master, data)
                else:  # the sensor's reply
                    if self.silent:
                        continue
                    if self.corrupt:
                        data = data[:-1] + bytes([data[-1] ^ 0xFF])
                    os.write(self.b_master, data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for fd in (self.a_master, self.b_master, *self._slaves):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            self.link.unlink()


class VirtualSensor:
    """A transmitter at ``address`` speaking ``profile``, readable at ``link``."""

    def __init__(self, link: Path, profile: SensorProfile, address: int = 1) -> None:
        self.link, self.profile, self.address = link, profile, address
        self.modem: NullModem | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._device: Any = None
        self._raw: dict[int, int] = {}

    def start(self, **values: float) -> VirtualSensor:
        from pymodbus.simulator import DataType, SimData, SimDevice

        async def current(_fc: int, start: int, _address: int, _count: int,
                          registers: list[int], _values: Any) -> None:  # fmt: skip
            for reg, raw in self._raw.items():  # the readings as they are now
                if 0 <= reg - start < len(registers):
                    registers[reg - start] = raw

        block = SimData(0, count=32, values=0, datatype=DataType.REGISTERS)
        self._device = SimDevice(self.address, simdata=[block], action=current)
        self.modem = NullModem(self.link)
        self.set(**values)
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True,
                                        name="virtual-sensor")  # fmt: skip
        self._thread.start()
        deadline = time.monotonic() + 10
        while not (ready.is_set() and self._server.is_active()):  # its port open: listening
            if time.monotonic() > deadline:
                raise RuntimeError("the virtual sensor's server did not start")
            time.sleep(0.02)
        return self

    def _serve(self, ready: threading.Event) -> None:
        from pymodbus import FramerType
        from pymodbus.server import ModbusSerialServer

        assert self._loop is not None and self.modem is not None
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._server = ModbusSerialServer(
                self._device, framer=FramerType.RTU, port=self.modem.device_path,  # type: ignore[union-attr]
                baudrate=self.profile.baudrate, parity=self.profile.parity,
            )  # fmt: skip
            ready.set()
            await self._server.serve_forever()

        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(main())

    def set(self, **values: float) -> None:
        """New readings, in the quantity's units (``temperature=12.5``)."""
        for v in self.profile.values:
            if v.quantity in values:
                self._raw[v.address] = round(values[v.quantity] / v.scale) & 0xFFFF

    def stop(self) -> None:
        if self._server is not None and self._loop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop)
            with contextlib.suppress(Exception):
                fut.result(5)
        if self._thread is not None:
            self._thread.join(5)
        if self.modem is not None:
            self.modem.close()
