"""Space kept back on the box's card for the database itself.

A card filled by anything (the box's own evidence, logs, another program) must not stop the box:
SQLite cannot even open a WAL database without room for its ``-shm`` and ``-wal`` files, nor
write the marks that let it forget confirmed events and so free space. The outbox keeps a file
of ``reserve_bytes`` beside the database while there is room, and gives it back to the disk
when the disk is full, so the database opens and its own bookkeeping goes on.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path

log = logging.getLogger("shian.outbox")


def _allocate(path: Path, size: int) -> bool:
    """A file of ``size`` bytes really allocated (not sparse); False, and no file, when the
    disk has no room."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError:
        return False
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            _write_zeros(fd, size)  # a filesystem without fallocate
    except OSError:
        os.close(fd)
        path.unlink(missing_ok=True)  # a part of it would only take the room back
        return False
    os.close(fd)
    return True


def _write_zeros(fd: int, size: int) -> None:
    block = b"\0" * 65536
    done = 0
    while done < size:
        done += os.write(fd, block[: min(len(block), size - done)])
    os.fsync(fd)


class Reserve:
    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size

    def ensure(self) -> bool:
        """Hold the reserve again if it is not held; False when the disk has no room for it."""
        if self.size <= 0:
            return True
        with contextlib.suppress(OSError):
            if self.path.stat().st_size >= self.size:
                return True
        return _allocate(self.path, self.size)

    def room(self) -> bool:
        """Whether the disk has room again: the reserve is taken back if it was given up, else
        a probe of 64 KiB is allocated and removed."""
        if self.size > 0 and not self.path.exists():
            return self.ensure()
        probe = self.path.with_name(self.path.name + ".probe")
        fits = _allocate(probe, 64 * 1024)
        probe.unlink(missing_ok=True)
        return fits

    def release(self) -> bool:
        """Give the reserve to the disk; True if there was one to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        log.warning("the disk is full: released the %d bytes kept for the database", self.size)
        return True
