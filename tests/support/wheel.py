"""The package as an installer gets it: the wheel built from this checkout, installed with one
role's extra in a fresh virtual environment outside the source tree (tests/real/test_package.py,
bench/install.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(out: Path) -> Path:
    """``pip wheel`` of the checkout (an isolated build, as any installer's)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("shian-*.whl"))


@dataclass
class Install:
    bin: Path
    seconds: float
    megabytes: float

    def env(self) -> dict[str, str]:
        """The environment of a shell outside the tree: no PYTHONPATH, this venv first."""
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.bin}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def run(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = str(self.bin / args[0]) if (self.bin / args[0]).exists() else args[0]
        return subprocess.run(
            [exe, *args[1:]], cwd=cwd, env=self.env(), capture_output=True, text=True, check=check
        )


def install(wheel: Path, role: str, venv: Path) -> Install:
    """A fresh venv with ``shian[role]`` from ``wheel``, timed, and its size on disk."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        [*pip, "--disable-pip-version-check", f"{wheel}[{role}]"],
        check=True,
        capture_output=True,
        cwd=venv.parent,
    )
    seconds = time.monotonic() - start
    size = sum(p.stat().st_size for p in venv.rglob("*") if p.is_file() and not p.is_symlink())
    return Install(venv / "bin", seconds, size / 2**20)
