"""The motion gate: a grey frame about 100 px high against a running average. Detection runs
only on square regions around motion (never smaller than the model input), plus a periodic
full-frame check so that a still intruder is not missed.

A change over most of the frame (lights switched on, auto exposure) is not motion: the average
is reset to the new frame and nothing is detected on it.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from edge.vision.detector import Region

SMALL_HEIGHT = 100


class MotionGate:
    def __init__(
        self,
        size: tuple[int, int],
        model_side: int,
        masks: list[list[tuple[int, int]]] | None = None,
        threshold: int = 25,
        min_area: float = 0.002,
        alpha: float = 0.05,
        global_change: float = 0.6,
    ) -> None:
        self.w, self.h = size
        self.scale = SMALL_HEIGHT / self.h
        self.small = (max(1, round(self.w * self.scale)), SMALL_HEIGHT)
        self.model_side = model_side
        self.threshold, self.alpha, self.global_change = threshold, alpha, global_change
        self.min_pixels = min_area * self.small[0] * self.small[1]
        self.avg: np.ndarray | None = None
        self.mask = np.full((self.small[1], self.small[0]), 255, np.uint8)
        for poly in masks or []:
            pts = np.array([[x * self.scale, y * self.scale] for x, y in poly], np.int32)
            cv2.fillPoly(self.mask, [pts], 0)

    def grey(self, frame: np.ndarray) -> np.ndarray:
        g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        g = cv2.resize(g, self.small, interpolation=cv2.INTER_AREA)
        return cv2.GaussianBlur(g, (5, 5), 0)

    def regions(self, frame: np.ndarray) -> list[Region]:
        """Square regions (x, y, w, h in frame pixels) around what moved since the average."""
        g = self.grey(frame).astype(np.float32)
        if self.avg is None:
            self.avg = g
            return []
        diff = cv2.absdiff(g, self.avg)
        cv2.accumulateWeighted(g, self.avg, self.alpha)
        moving: Any = (diff > self.threshold).astype(np.uint8) * 255
        moving = cv2.bitwise_and(moving, self.mask)
        changed = cv2.countNonZero(moving)
        if changed < self.min_pixels:
            return []
        if changed > self.global_change * moving.size:
            self.avg = g  # a light switched: relearn at once
            return []
        moving = cv2.dilate(moving, np.ones((3, 3), np.uint8), iterations=2)
        contours, _ = cv2.findContours(moving, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[tuple[int, int, int, int]] = [
            tuple(cv2.boundingRect(c))  # type: ignore[misc]
            for c in contours
            if cv2.contourArea(c) >= self.min_pixels / 4
        ]
        return self._squares(_merge(boxes))

    def _squares(self, boxes: list[tuple[int, int, int, int]]) -> list[Region]:
        out: list[Region] = []
        for x, y, w, h in boxes:
            fx, fy, fw, fh = (
                int(x / self.scale),
                int(y / self.scale),
                int(w / self.scale) + 1,
                int(h / self.scale) + 1,
            )
            side = min(max(fw, fh, self.model_side), self.w, self.h)
            cx, cy = fx + fw // 2, fy + fh // 2
            x0 = min(max(0, cx - side // 2), self.w - side)
            y0 = min(max(0, cy - side // 2), self.h - side)
            region = (x0, y0, side, side)
            if region not in out:
                out.append(region)
        return out


def _merge(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Merge overlapping or touching boxes, so one animal is one region."""
    boxes = sorted(boxes)
    merged: list[list[int]] = []
    for x, y, w, h in boxes:
        for m in merged:
            if (
                x <= m[0] + m[2] + 4
                and m[0] <= x + w + 4
                and y <= m[1] + m[3] + 4
                and m[1] <= y + h + 4
            ):
                nx, ny = min(m[0], x), min(m[1], y)
                m[2], m[3] = max(m[0] + m[2], x + w) - nx, max(m[1] + m[3], y + h) - ny
                m[0], m[1] = nx, ny
                break
        else:
            merged.append([x, y, w, h])
    return [(a, b, c, d) for a, b, c, d in merged]
