"""The contract between the edge agent and the cloud collector.

Only this package crosses between ``edge`` and ``cloud``: message models, topics, codec.
"""

SCHEMA_VERSION = 1
"""Envelope schema version this code writes, and the newest it accepts."""
