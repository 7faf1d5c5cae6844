"""Camera scenes made from photographs: video files for the demo, the tests and the benchmark
(a box with no camera attached can still be shown working)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SIZE = (640, 360)
FPS = 10


def _read(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    if img is None:
        raise FileNotFoundError(f"cannot read the photo {path}")
    return np.asarray(img)


def _fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale and centre-crop a photo to fill ``size``."""
    w, h = size
    scale = max(w / img.shape[1], h / img.shape[0])
    resized = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)))
    y = (resized.shape[0] - h) // 2
    x = (resized.shape[1] - w) // 2
    return resized[y : y + h, x : x + w].copy()


def write_video(path: Path, frames: list[np.ndarray], fps: int = FPS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def empty_scene(background: Path, seconds: float = 6, noise: float = 2.0) -> list[np.ndarray]:
    """A still scene with sensor noise."""
    bg = _fit(_read(background), SIZE)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(int(seconds * FPS)):
        n = rng.normal(0, noise, bg.shape).astype(np.int16)
        out.append(np.clip(bg.astype(np.int16) + n, 0, 255).astype(np.uint8))
    return out


def intruder_scene(
    background: Path,
    intruder: Path,
    box: tuple[int, int, int, int],
    seconds: float = 8,
    enter_at: float = 2,
    size: int = 300,
) -> list[np.ndarray]:
    """The still scene, then ``intruder`` (cut from its photo at ``box``) walks in from the
    right and stays."""
    frames = empty_scene(background, seconds)
    x1, y1, x2, y2 = box
    cut = _read(intruder)[y1:y2, x1:x2]
    h = round(size * cut.shape[0] / cut.shape[1])
    cut = cv2.resize(cut, (size, h))
    h = min(h, SIZE[1] - 20)
    cut = cut[:h]
    start, settle = int(enter_at * FPS), int((enter_at + 2) * FPS)
    for i in range(start, len(frames)):
        t = min(1.0, (i - start) / max(1, settle - start))
        x = round(SIZE[0] - t * (SIZE[0] - 300))
        y = SIZE[1] - h - 10
        visible = min(size, SIZE[0] - x)
        if visible > 0:
            frames[i][y : y + h, x : x + visible] = cut[:, :visible]
    return frames


def make_demo_videos(photos: Path, out: Path) -> dict[str, Path]:
    """The demo kitchen's cameras: a cat walking into the kitchen, and still views."""
    bg = photos / "hot_dog.jpg"
    return {
        "cam1": write_video(
            out / "cam1_cat.avi", intruder_scene(bg, photos / "cat_720p.jpg", (140, 100, 910, 720))
        ),
        "cam2": write_video(out / "cam2_still.avi", empty_scene(photos / "kite_and_cold.jpg")),
        "cam3": write_video(out / "cam3_still.avi", empty_scene(bg)),
    }
