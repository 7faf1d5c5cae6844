"""Shian edge agent: one per box, in a kitchen or at a market stall."""

__version__ = "0.1.0"

from pathlib import Path

PROFILES_DIR = Path(__file__).resolve().parent.parent / "firmware_profiles"
"""Device profiles as data: scales, printers, models (and later boxes, cameras)."""
