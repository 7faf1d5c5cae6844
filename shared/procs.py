"""Child processes (FFmpeg, nginx, the stand-in camera): ended politely, then for sure."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess
from typing import Any


def _prctl() -> Any:
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None).prctl
    return None


_PRCTL = _prctl()
"""Looked up here, in the parent: a child forked from threads must not load libraries."""
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child, before its exec
    """For ``preexec_fn``: the kernel sends the child SIGTERM when its parent dies (Linux's
    PR_SET_PDEATHSIG), so a process killed outright leaves no FFmpeg, nginx or camera behind."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def end(proc: subprocess.Popen[bytes], timeout: float = 5) -> None:
    """SIGTERM, wait ``timeout`` seconds, then SIGKILL; close the pipes it was given."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
