"""Shian cloud collector: subscribes, validates, stores idempotently, tracks devices."""

__version__ = "0.1.0"
