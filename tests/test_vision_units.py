"""Motion gate, camera health, rules and evidence, on frames made here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import CameraSettings, RuleSettings, Window
from edge.vision.decoders.common import Detection
from edge.vision.evidence import Evidence
from edge.vision.health import CameraHealth
from edge.vision.motion import MotionGate
from edge.vision.rules import Rules, in_window

W, H = 640, 360


def scene(seed: int = 1) -> np.ndarray:
    """A textured still 'kitchen': tiles, a counter, shelves."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), 170, np.uint8)
    for x in range(0, W, 40):
        cv2.line(img, (x, 0), (x, H), (120, 120, 120), 2)
    for y in range(0, H, 40):
        cv2.line(img, (0, y), (W, y), (120, 120, 120), 2)
    cv2.rectangle(img, (50, 220), (600, 300), (60, 90, 140), -1)
    for _ in range(12):
        x, y = int(rng.integers(0, W - 60)), int(rng.integers(0, 200))
        cv2.rectangle(
            img, (x, y), (x + 50, y + 30), tuple(int(c) for c in rng.integers(0, 255, 3)), -1
        )
    return img


def wall() -> np.ndarray:
    """What a camera pushed towards the wall sees."""
    g = np.tile(np.linspace(90, 200, W, dtype=np.uint8), (H, 1))
    img = cv2.merge([g, g, g])
    cv2.rectangle(img, (400, 50), (600, 330), (40, 40, 40), -1)
    return img


def person(img: np.ndarray, x: int) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (x, 90), (x + 100, 330), (40, 50, 70), -1)
    cv2.circle(out, (x + 50, 65), 28, (90, 120, 170), -1)
    return out


def with_blob(img: np.ndarray, x: int, y: int, size: int = 60) -> np.ndarray:
    out = img.copy()
    cv2.circle(out, (x, y), size // 2, (20, 20, 20), -1)
    return out


# -- motion ------------------------------------------------------------------------------------
def test_still_scene_has_no_motion_and_a_moving_blob_has_a_square_region() -> None:
    gate = MotionGate((W, H), model_side=300)
    bg = scene()
    for _ in range(5):
        assert gate.regions(bg) == []
    regions = gate.regions(with_blob(bg, 500, 100))
    assert len(regions) == 1
    x, y, w, h = regions[0]
    assert w == h == 300, "never smaller than the model input"
    assert x <= 470 and 530 <= x + w <= W and y <= 70 and 130 <= y + h <= H


def test_light_switched_on_is_not_motion() -> None:
    gate = MotionGate((W, H), model_side=300)
    bg = scene()
    gate.regions(bg)
    brighter = cv2.convertScaleAbs(bg, alpha=1.0, beta=60)
    assert gate.regions(brighter) == []
    assert gate.regions(brighter) == [], "relearned at once"


def test_masked_motion_is_ignored() -> None:
    gate = MotionGate((W, H), 300, masks=[[(400, 0), (640, 0), (640, 200), (400, 200)]])
    bg = scene()
    gate.regions(bg)
    assert gate.regions(with_blob(bg, 500, 100)) == []
    assert gate.regions(with_blob(bg, 100, 100)) != []


# -- camera health ------------------------------------------------------------------------------
def run(
    health: CameraHealth, frames: list[np.ndarray], t0: float, step: float = 1.0
) -> tuple[list[tuple[str, str]], float]:
    changes = []
    t = t0
    for f in frames:
        c = health.update(f, t)
        if c:
            changes.append(c)
        t += step
    return changes, t


def learned() -> tuple[CameraHealth, float]:
    h = CameraHealth(raise_after_s=3, clear_after_s=3, learn_frames=5)
    changes, t = run(h, [scene()] * 6, 0.0)
    assert changes == []
    return h, t


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (np.zeros((H, W, 3), np.uint8), "covered"),
        (np.full((H, W, 3), 250, np.uint8), "blinded"),
        (cv2.GaussianBlur(scene(), (31, 31), 12), "blurred"),
        (wall(), "turned_away"),
    ],
)
def test_tampering_is_raised_within_seconds_and_cleared(bad: np.ndarray, problem: str) -> None:
    h, t = learned()
    changes, t = run(h, [bad] * 5, t)
    assert changes == [("raised", problem)]
    changes, t = run(h, [scene()] * 5, t)
    assert changes == [("cleared", "ok")]


def test_lighting_changes_and_people_walking_by_are_not_tampering() -> None:
    h, t = learned()
    dimmer = cv2.convertScaleAbs(scene(), alpha=0.6, beta=0)
    brighter = cv2.convertScaleAbs(scene(), alpha=1.2, beta=20)
    walking = [person(scene(), 20 + 70 * i) for i in range(8)]
    changes, _ = run(h, [dimmer] * 5 + [brighter] * 5 + walking, t)
    assert changes == [], h.metrics


# -- rules ------------------------------------------------------------------------------------
CAT = Detection("Cat", 0.8, (100, 100, 200, 200))


def test_k_of_n_persistence_and_cooldown() -> None:
    r = Rules(
        [
            RuleSettings(
                violation="animal_in_kitchen", labels=["Cat"], persistence=(2, 3), cooldown_s=60
            )
        ],
        [],
    )
    assert r.evaluate("c1", [CAT], 0) == []
    assert r.evaluate("c1", [], 1) == []
    (v,) = r.evaluate("c1", [CAT], 2)
    assert v.type == "animal_in_kitchen"
    assert r.evaluate("c1", [CAT], 3) == [] and r.evaluate("c1", [CAT], 4) == []  # cooldown
    assert r.evaluate("c2", [CAT], 4) == [] and r.evaluate("c2", [CAT], 5) != []  # per camera
    assert r.evaluate("c1", [CAT], 61) == []  # still cooling down (fired at 2)
    assert r.evaluate("c1", [CAT], 63) != [], "still there after the cooldown: reported again"


def test_score_zone_and_camera_filters() -> None:
    cams = [
        CameraSettings(
            name="c1", source="x", zones={"prep": [(0, 0), (150, 0), (150, 150), (0, 150)]}
        )
    ]
    rule = RuleSettings(
        violation="rodent",
        labels=["rat"],
        min_score=0.6,
        zones=["prep"],
        cameras=["c1"],
        persistence=(1, 1),
        cooldown_s=0,
    )
    r = Rules([rule], cams)
    inside = Detection("rat", 0.7, (50, 50, 100, 100))
    outside = Detection("rat", 0.9, (300, 300, 350, 350))
    weak = Detection("rat", 0.5, (50, 50, 100, 100))
    assert r.evaluate("c1", [outside, weak], 0) == []
    (v,) = r.evaluate("c1", [inside], 1)
    assert v.zone == "prep"
    assert r.evaluate("c2", [inside], 2) == []


def test_time_windows_wrap_midnight() -> None:
    night = Window(start="22:00", end="05:00", days=["mon"])
    cst = timezone(timedelta(hours=8))
    assert in_window(night, datetime(2026, 11, 23, 23, 0, tzinfo=cst))  # Monday 23:00
    assert in_window(night, datetime(2026, 11, 24, 4, 59, tzinfo=cst))  # Tuesday 04:59
    assert not in_window(night, datetime(2026, 11, 24, 23, 0, tzinfo=cst))  # Tuesday 23:00
    assert not in_window(night, datetime(2026, 11, 23, 12, 0, tzinfo=cst))
    rule = RuleSettings(
        violation="person_after_hours",
        labels=["person"],
        persistence=(1, 1),
        active=[Window(start="22:00", end="05:00")],
    )
    r = Rules([rule], [], tz_offset_h=8)
    person = Detection("person", 0.9, (0, 0, 10, 10))
    noon = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # 12:00 in China
    late = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 23:00 in China
    assert r.evaluate("c", [person], 0, wall=noon) == []
    assert r.evaluate("c", [person], 1, wall=late) != []


# -- evidence ---------------------------------------------------------------------------------
def test_evidence_quota_deletes_oldest_first(tmp_path: Path) -> None:
    ev = Evidence(tmp_path, quota_bytes=250_000)
    saved = [ev.save(scene(i), [CAT], f"frame {i}") for i in range(12)]
    assert all(saved)
    kept = sorted(p.name for p in tmp_path.glob("*.jpg"))
    assert ev.used <= 250_000 and sum(p.stat().st_size for p in tmp_path.glob("*.jpg")) == ev.used
    assert ev.counters["evidence_deleted"] > 0
    ids = [s[0] for s in saved if s]
    assert kept == sorted(f"{i}.jpg" for i in ids[-len(kept) :]), "the newest are kept"


def test_evidence_never_takes_the_disk_below_its_minimum(tmp_path: Path) -> None:
    free = {"bytes": 10_000_000}
    ev = Evidence(
        tmp_path, quota_bytes=10**9, min_free_bytes=9_900_000, free_bytes=lambda _p: free["bytes"]
    )
    first = ev.save(scene(), [CAT], "x")
    assert first is not None
    free["bytes"] = 9_900_000  # the disk filled up meanwhile
    second = ev.save(scene(), [CAT], "y")
    assert second is None or not first[1].exists(), "room made by deleting the oldest"
    free["bytes"] = 0
    assert ev.save(scene(), [CAT], "z") is None
    assert ev.counters["evidence_skipped"] >= 1
