"""Child processes (FFmpeg, nginx, the stand-in camera): ended politely, then for sure."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import subprocess


def die_with_parent() -> None:  # pragma: no cover - runs in the child, before its exec
    """For ``preexec_fn``: the kernel sends the child SIGTERM when its parent dies (Linux's
    PR_SET_PDEATHSIG), so a process killed outright leaves no FFmpeg, nginx or camera behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)


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
