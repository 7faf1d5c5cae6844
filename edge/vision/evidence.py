"""Evidence: a JPEG snapshot with the boxes drawn, kept on disk under a quota.

Files are named by snapshot id (a UUIDv7, so names sort by time). Before a file is written the
oldest are deleted until both the quota and the disk's minimum free space hold, so evidence
never fills the disk; if even that cannot make room, the snapshot is skipped (counted) and the
violation is still reported. Each snapshot is also queued in the box database for the sync
worker to send on ``.../snap/{id}``.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edge.vision.decoders.common import Detection
from shared.ids import uuid7

log = logging.getLogger("shian.evidence")

COLORS = [(0, 0, 255), (0, 200, 255), (255, 0, 255), (0, 255, 0), (255, 128, 0)]


def draw(frame: np.ndarray, dets: list[Detection], title: str) -> np.ndarray:
    img = frame.copy()
    for i, d in enumerate(dets):
        c = COLORS[i % len(COLORS)]
        x1, y1, x2, y2 = (int(v) for v in d.box)
        cv2.rectangle(img, (x1, y1), (x2, y2), c, 2)
        label = f"{d.label} {d.score:.2f}"
        cv2.putText(
            img, label, (x1 + 2, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1, cv2.LINE_AA
        )
    cv2.putText(
        img,
        title,
        (6, img.shape[0] - 8),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.45,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return img


class Evidence:
    def __init__(
        self,
        folder: Path,
        quota_bytes: int,
        min_free_bytes: int = 0,
        quality: int = 80,
        free_bytes: Callable[[Path], int] | None = None,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.quota, self.min_free, self.quality = quota_bytes, min_free_bytes, quality
        self.free_bytes = free_bytes or (lambda p: shutil.disk_usage(p).free)
        self._lock = threading.Lock()
        self.files = sorted((p for p in folder.glob("*.jpg")), key=lambda p: p.name)
        self.used = sum(p.stat().st_size for p in self.files)
        self.counters = {"evidence_saved": 0, "evidence_deleted": 0, "evidence_skipped": 0}

    def path(self, snap_id: str) -> Path:
        return self.folder / f"{snap_id}.jpg"

    def save(self, frame: np.ndarray, dets: list[Detection], title: str) -> tuple[str, Path] | None:
        """Write a snapshot; (id, path), or None when no room could be made."""
        ok, jpg = cv2.imencode(
            ".jpg", draw(frame, dets, title), [cv2.IMWRITE_JPEG_QUALITY, self.quality]
        )
        if not ok:
            return None
        data = jpg.tobytes()
        snap_id = str(uuid7())
        with self._lock:
            if not self._make_room(len(data)):
                self.counters["evidence_skipped"] += 1
                log.warning("no room for evidence (quota %d, disk): snapshot skipped", self.quota)
                return None
            path = self.path(snap_id)
            tmp = path.with_suffix(".part")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            except OSError as exc:  # the disk filled up anyway
                tmp.unlink(missing_ok=True)
                self.counters["evidence_skipped"] += 1
                log.warning("cannot write evidence: %s", exc)
                return None
            self.files.append(path)
            self.used += len(data)
            self.counters["evidence_saved"] += 1
        return snap_id, path

    def _make_room(self, need: int) -> bool:
        def enough() -> bool:
            return (
                self.used + need <= self.quota
                and self.free_bytes(self.folder) - need >= self.min_free
            )

        while not enough() and self.files:
            oldest = self.files.pop(0)
            try:
                size = oldest.stat().st_size
                oldest.unlink()
            except FileNotFoundError:
                size = 0
            self.used -= size
            self.counters["evidence_deleted"] += 1
        return enough()
