"""Boxes, scores and non-maximum suppression shared by the decoders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2

    def as_json(self) -> dict[str, object]:
        return {
            "label": self.label,
            "score": round(self.score, 4),
            "box": [round(v, 1) for v in self.box],
        }


def sigmoid(x: Array) -> Array:
    out: Array = (1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))).astype(np.float32)
    return out


def dequantize(t: np.ndarray, quant: tuple[float, int]) -> Array:
    """int8 / uint8 tensors to float with the tensor's (scale, zero point)."""
    scale, zero = quant
    if t.dtype in (np.int8, np.uint8, np.int16) and scale:
        return ((t.astype(np.float32) - zero) * scale).astype(np.float32)
    return t.astype(np.float32)


def iou(a: Array, b: Array) -> Array:
    """IoU of box ``a`` [4] against boxes ``b`` [N, 4] (x1, y1, x2, y2)."""
    x1 = np.maximum(a[0], b[:, 0])
    y1 = np.maximum(a[1], b[:, 1])
    x2 = np.minimum(a[2], b[:, 2])
    y2 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    out: Array = inter / np.maximum(area_a + area_b - inter, 1e-9)
    return out


def nms(boxes: Array, scores: Array, iou_threshold: float, limit: int = 100) -> list[int]:
    """Greedy non-maximum suppression; indices kept, best first."""
    order = np.argsort(-scores)
    keep: list[int] = []
    while order.size and len(keep) < limit:
        i = int(order[0])
        keep.append(i)
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou(boxes[i], boxes[rest]) <= iou_threshold]
    return keep


def select(
    boxes: Array,
    scores: Array,
    classes: npt.NDArray[np.int64],
    labels: list[str],
    min_score: float,
    iou_threshold: float,
) -> list[Detection]:
    """Threshold, then NMS per class; boxes in 0..1 of the model input."""
    mask = scores >= min_score
    boxes, scores, classes = boxes[mask], scores[mask], classes[mask]
    out: list[Detection] = []
    for c in np.unique(classes):
        idx = np.where(classes == c)[0]
        for k in nms(boxes[idx], scores[idx], iou_threshold):
            i = idx[k]
            label = labels[int(c)] if 0 <= int(c) < len(labels) else str(int(c))
            b = np.clip(boxes[i], 0.0, 1.0)
            out.append(
                Detection(
                    label, float(scores[i]), (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
                )
            )
    return sorted(out, key=lambda d: -d.score)
