"""Shian edge agent: one per box, in a kitchen or at a market stall."""

__version__ = "0.1.0"
