"""Violation rules: detection labels to violation types, per site, from config.

A detection counts for a rule when its label is one of the rule's, its score reaches the rule's
minimum, its camera is one of the rule's (or the rule names none), its centre is in one of the
rule's zones (or the rule names none), and the rule is active now (its time windows). A rule
fires when it matched in k of the last n looks at a camera, and not again on that camera for
the same violation type until its cooldown has passed. A site's own model (labels such as
no_mask, smoking, rat) drops in by naming its labels here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import cv2
import numpy as np

from edge.config import CameraSettings, RuleSettings
from edge.vision.decoders.common import Detection
from shared.hours import in_window


@dataclass(frozen=True)
class Violation:
    camera: str
    type: str
    detection: Detection
    zone: str | None


def inside(polygon: list[tuple[int, int]], x: float, y: float) -> bool:
    pts = np.array(polygon, np.float32)
    return cv2.pointPolygonTest(pts, (float(x), float(y)), False) >= 0


class Rules:
    def __init__(
        self, rules: list[RuleSettings], cameras: list[CameraSettings], tz_offset_h: float = 8
    ) -> None:
        self.rules = rules
        self.zones = {c.name: c.zones for c in cameras}
        self.tz = timezone(timedelta(hours=tz_offset_h))
        self.history: dict[tuple[str, int], deque[bool]] = {}
        self.last_fired: dict[tuple[str, str], float] = {}

    def _match(
        self, rule: RuleSettings, camera: str, dets: list[Detection]
    ) -> tuple[Detection, str | None] | None:
        best: tuple[Detection, str | None] | None = None
        for d in dets:
            if d.label not in rule.labels or d.score < rule.min_score:
                continue
            zone = None
            if rule.zones:
                cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
                zone = next(
                    (
                        z
                        for z in rule.zones
                        if z in self.zones.get(camera, {}) and inside(self.zones[camera][z], cx, cy)
                    ),
                    None,
                )
                if zone is None:
                    continue
            if best is None or d.score > best[0].score:
                best = (d, zone)
        return best

    def evaluate(
        self, camera: str, dets: list[Detection], now: float, wall: datetime | None = None
    ) -> list[Violation]:
        """One look at a camera (``now`` monotonic seconds, ``wall`` for the time windows)."""
        local = (wall or datetime.now(UTC)).astimezone(self.tz)
        out: list[Violation] = []
        for i, rule in enumerate(self.rules):
            if rule.cameras and camera not in rule.cameras:
                continue
            if rule.active and not any(in_window(w, local) for w in rule.active):
                continue
            k, n = rule.persistence
            hist = self.history.setdefault((camera, i), deque(maxlen=n))
            hit = self._match(rule, camera, dets)
            hist.append(hit is not None)
            if hit is None or sum(hist) < k:
                continue
            key = (camera, rule.violation)
            last = self.last_fired.get(key)
            if last is not None and now - last < rule.cooldown_s:
                continue
            self.last_fired[key] = now
            hist.clear()
            out.append(Violation(camera, rule.violation, hit[0], hit[1]))
        return out
