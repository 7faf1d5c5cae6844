"""What each role costs to install: the wheel built from this checkout, installed with
``shian[edge]`` and with ``shian[cloud]`` into fresh virtual environments, timed, and their
size on disk. pip's cache is warm after the first run (as on a fleet behind a package mirror);
the first run's time, with downloads, is printed apart.

    .venv/bin/python bench/install.py --runs 3 [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.wheel import build_wheel, install  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out: dict[str, dict[str, float | list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        wheel = build_wheel(Path(tmp) / "dist")
        for role in ("edge", "cloud"):
            times, size = [], 0.0
            for n in range(args.runs):
                got = install(wheel, role, Path(tmp) / f"{role}{n}" / "venv")
                times.append(round(got.seconds, 1))
                size = got.megabytes
            out[role] = {
                "seconds": times,
                "median_s": statistics.median(times),
                "megabytes": round(size),
            }
    if args.json:
        print(json.dumps({"machine": platform.platform(), "roles": out}))
        return
    print(f"{platform.platform()}, Python {platform.python_version()}")
    for role, r in out.items():
        print(f"shian[{role}]: {r['megabytes']} MB, {r['median_s']} s median (runs {r['seconds']})")


if __name__ == "__main__":
    main()
