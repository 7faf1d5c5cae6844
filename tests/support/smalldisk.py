"""A small real filesystem (tmpfs of a few MB) that a test or the fault bench fills and frees,
so a full disk is the kernel's own ENOSPC, not a simulation. Mounting needs root (or
CAP_SYS_ADMIN); where it cannot mount, :func:`mount` says why and the caller skips."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path


class SmallDisk:
    def __init__(self, where: Path, size_mb: int) -> None:
        self.path, self.size_mb = where, size_mb
        self.filler = where / "filler"

    def mount(self) -> str | None:
        """Mount it; None, or why it cannot be mounted here."""
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            out = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.path)],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except OSError as exc:
            return f"cannot run mount: {exc}"
        if out.returncode != 0:
            return f"cannot mount a tmpfs here (needs root): {out.stderr.strip()}"
        return None

    def fill(self) -> int:
        """Take every free byte with a filler file; returns how many it took."""
        taken = 0
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
                chunk = b"\0" * size
                while True:
                    try:
                        taken += os.write(fd, chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return taken

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, timeout=20)
