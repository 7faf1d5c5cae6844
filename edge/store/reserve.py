"""Space kept back on the box's card for the database itself.

A card filled by anything (the box's own evidence, logs, another program) must not stop the box:
SQLite cannot even open a WAL database without room for its ``-shm`` and ``-wal`` files, nor
write the marks that let it forget confirmed events and so free space. The outbox keeps a file
of ``reserve_bytes`` beside the database while there is room, and gives it back to the disk
when the disk is full, so the database opens and its own bookkeeping goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger("shian.outbox")


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
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            os.posix_fallocate(fd, 0, self.size)  # really allocated, unlike a sparse file
        except OSError:
            os.close(fd)
            self.path.unlink(missing_ok=True)  # a part of it would only take the room back
            return False
        os.close(fd)
        return True

    def taken_back(self) -> bool:
        """Take back a reserve that was given up; True only if there was room for it."""
        if self.size <= 0 or self.path.exists():
            return False
        return self.ensure()

    def release(self) -> bool:
        """Give the reserve to the disk; True if there was one to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        log.warning("the disk is full: released the %d bytes kept for the database", self.size)
        return True
