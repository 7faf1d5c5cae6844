"""Debian's Chromium for the demo, tests and benchmarks (Playwright drives it; it never
downloads one)."""

from __future__ import annotations

import shutil

# Without the background-networking flags Chromium keeps trying hosts this closed network
# refuses; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")
