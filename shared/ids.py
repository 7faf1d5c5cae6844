"""Event ids: UUIDv7 (RFC 9562), made on the edge.

A UUIDv7 starts with a 48-bit Unix millisecond timestamp, so ids sort by creation time, which
keeps the cloud's unique index append-mostly. Python 3.11 has no ``uuid.uuid7``; this is a
small implementation of section 5.7 with the "monotonic random" method of section 6.2: within
one millisecond the 12-bit ``rand_a`` field counts up, so ids made by one process never go
backwards even when the wall clock does not move.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

UUID7_TEXT = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
"""A UUIDv7 as ``str(uuid7())`` writes it: lowercase, with hyphens. Ids travel and are stored
as this text, one spelling for each id (a dedupe key must have one)."""

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """Return a new UUIDv7; ``now_ms`` is for tests."""
    global _last_ms, _counter
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= _last_ms:
            # Same millisecond (or the clock stepped back): keep the last timestamp and count up.
            ms = _last_ms
            _counter += 1
            if _counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next millisecond
                ms += 1
                _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF
        else:
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        _last_ms = ms
        rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
        value = (ms & ((1 << 48) - 1)) << 80
        value |= 0x7 << 76
        value |= (_counter & 0xFFF) << 64
        value |= 0b10 << 62
        value |= rand_b
        return uuid.UUID(int=value)


def uuid7_ms(value: uuid.UUID) -> int:
    """The Unix millisecond timestamp inside a UUIDv7."""
    return value.int >> 80
