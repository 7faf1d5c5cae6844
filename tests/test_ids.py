from __future__ import annotations

import time

from shared.ids import uuid7, uuid7_ms


def test_uuid7_has_version_variant_and_time() -> None:
    u = uuid7()
    assert u.version == 7 and u.variant == "specified in RFC 4122"
    assert abs(uuid7_ms(u) - time.time() * 1000) < 5000


def test_uuid7_is_monotonic_within_one_millisecond_and_when_the_clock_steps_back() -> None:
    ids = [uuid7(now_ms=1_000_000) for _ in range(5000)] + [uuid7(now_ms=999_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
