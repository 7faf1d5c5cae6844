"""SSD models with the TFLite_Detection_PostProcess op: four outputs, boxes already decoded
(ymin, xmin, ymax, xmax in 0..1), classes, scores and a count. Output order differs between
exports, so the profile names it (``outputs``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.vision.decoders.common import Array, Detection, select


def decode(
    spec: Any, outputs: list[Array], labels: list[str], min_score: float, iou: float
) -> list[Detection]:
    named = dict(zip(spec.outputs, outputs, strict=True))
    yx = named["boxes"].reshape(-1, 4)
    n = int(np.asarray(named["count"]).reshape(-1)[0])
    boxes = np.stack([yx[:, 1], yx[:, 0], yx[:, 3], yx[:, 2]], axis=1)[:n].astype(np.float32)
    scores = named["scores"].reshape(-1)[:n].astype(np.float32)
    classes = named["classes"].reshape(-1)[:n].astype(np.int64) + spec.class_offset
    return select(boxes, scores, classes, labels, min_score, iou)
