"""YOLO output layouts, as exported to TFLite.

- ``yolov5``: one tensor [1, N, 5 + C]: cx, cy, w, h, objectness, class scores (score = obj x
  class score).
- ``yolov8``: one tensor [1, 4 + C, N] (or [1, N, 4 + C]): cx, cy, w, h, class scores; no
  objectness.

Boxes are normalised to the input (``box_units = "normalized"``, the Ultralytics TFLite export)
or in input pixels (``"pixels"``). int8 outputs arrive here already dequantised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.vision.decoders.common import Array, Detection, select


def decode(
    spec: Any,
    outputs: list[Array],
    labels: list[str],
    width: int,
    height: int,
    min_score: float,
    iou: float,
) -> list[Detection]:
    t = outputs[0]
    t = t.reshape(t.shape[-2], t.shape[-1]) if t.ndim == 3 else t
    n_cls = len(labels)
    if spec.kind == "yolov8":
        if t.shape[0] == 4 + n_cls and t.shape[1] != 4 + n_cls:
            t = t.T  # [4 + C, N] -> [N, 4 + C]
        xywh, cls_scores = t[:, :4], t[:, 4 : 4 + n_cls]
        cls = np.argmax(cls_scores, axis=1)
        scores = cls_scores[np.arange(len(cls)), cls]
    else:
        xywh, obj, cls_scores = t[:, :4], t[:, 4], t[:, 5 : 5 + n_cls]
        cls = np.argmax(cls_scores, axis=1)
        scores = obj * cls_scores[np.arange(len(cls)), cls]
    if spec.box_units == "pixels":
        xywh = (xywh / np.array([width, height, width, height], dtype=np.float32)).astype(
            np.float32
        )
    cx, cy, w, h = xywh[:, 0], xywh[:, 1], xywh[:, 2], xywh[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return select(boxes, scores.astype(np.float32), cls.astype(np.int64), labels, min_score, iou)
