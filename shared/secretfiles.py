"""Files that hold secrets (passwords, keys, bundles), created with their final mode.

A file written and then ``chmod``-ed is readable by anyone for a moment (and for ever if the
process dies in between); these are created 0600 (or 0640 for a group that must read them)
from the first byte, written to a temporary name in the same folder, fsynced and renamed into
place, so a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import grp
import os
from pathlib import Path


def write_secret(path: Path, data: str | bytes, mode: int = 0o600, group: str = "") -> Path:
    """Write ``data`` to ``path`` atomically, created with ``mode`` (and ``group``, when that
    group exists and this process may give files to it)."""
    blob = data.encode() if isinstance(data, str) else data
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away; never adds beyond ``mode``
        if group:
            gid = _gid(group)
            if gid is not None:
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, -1, gid)
        with os.fdopen(fd, "wb", closefd=False) as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def _gid(group: str) -> int | None:
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None
