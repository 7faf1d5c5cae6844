"""Child processes (FFmpeg, nginx, the stand-in camera): ended politely, then for sure."""

from __future__ import annotations

import subprocess


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
