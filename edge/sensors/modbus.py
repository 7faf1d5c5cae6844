"""Reading a sensor over RS-485 Modbus RTU with pymodbus (through pyserial). Several sensors
may share one bus (one port, each its own address); each read is one request for the
profile's block of registers. Every failure becomes a :class:`SensorError` with the reason:
no answer, a CRC error, an exception code, a port that is gone."""

from __future__ import annotations

import logging
import threading
from typing import Any

from edge.sensors.profiles import SensorError, SensorProfile

log = logging.getLogger("shian.sensors")
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)  # its errors come back to us as values


class Bus:
    """One serial port and the client on it (opened on first use, again after a failure)."""

    def __init__(self, port: str, baudrate: int, parity: str, timeout_s: float = 1.0) -> None:
        self.port, self.baudrate, self.parity, self.timeout_s = port, baudrate, parity, timeout_s
        self._client: Any = None
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from pymodbus.client import ModbusSerialClient

        client = ModbusSerialClient(self.port, baudrate=self.baudrate, parity=self.parity,
                                    timeout=self.timeout_s, retries=0)  # fmt: skip
        if not client.connect():
            raise SensorError(f"cannot open {self.port}")
        return client

    def read(self, profile: SensorProfile, address: int) -> dict[str, float]:
        """One sensor's values, or SensorError."""
        with self._lock:
            try:
                if self._client is None:
                    self._client = self._open()
                call = (self._client.read_holding_registers if profile.function == 3
                        else self._client.read_input_registers)  # fmt: skip
                reply = call(profile.first, count=profile.count, device_id=address)
            except SensorError:
                raise
            except Exception as exc:  # pymodbus raises ModbusException and OSError subclasses
                self.close()
                raise SensorError(f"{type(exc).__name__}: {str(exc)[:200]}") from None
            if reply.isError():
                raise SensorError(f"exception code {getattr(reply, 'exception_code', '?')}")
            return profile.decode(list(reply.registers))

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            except Exception:  # closing a port that is already gone
                log.debug("closing %s", self.port, exc_info=True)
            self._client = None
