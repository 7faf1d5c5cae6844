"""systemd integration without a library: sd_notify over $NOTIFY_SOCKET, and the watchdog.

The agent says READY=1 once its workers run, and WATCHDOG=1 every half watchdog period, but
only while every worker is alive: a hung camera thread, scale reader or sync loop stops the
pings, and systemd restarts the service (WatchdogSec, Restart=always).
"""

from __future__ import annotations

import os
import socket

from shared.units import render_unit


def notify(message: str) -> bool:
    """Send a state line to systemd; False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(message.encode(), address)
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """Half of WatchdogSec, from $WATCHDOG_USEC (None when there is no watchdog)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 1e6 / 2


__all__ = ["notify", "render_unit", "watchdog_interval"]
