"""Anchor-based SSD outputs without post-processing in the graph: the SSD anchor generator
(TF object detection API / MediaPipe SsdAnchorsCalculator) and the two box codings in use.

- ``tf``: [ty, tx, th, tw] relative to the anchor with box-coder scales (SSD MobileNet: 10, 10,
  5, 5), one sigmoid score per class, class 0 background (the Open Images SSD).
- ``pixels``: [dx, dy, w, h, keypoints...] in pixels of the model input, fixed-size anchors, one
  sigmoid score (BlazeFace face detectors, the MediaPipe pose/person detector).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edge.vision.decoders.common import Array, Detection, select, sigmoid


def ssd_anchors(spec: Any, width: int, height: int) -> Array:
    """Anchors [N, 4] as (x_center, y_center, w, h) in 0..1."""
    n = spec.num_layers

    def scale_at(i: int) -> float:
        if n == 1:
            return float((spec.min_scale + spec.max_scale) / 2)
        return float(spec.min_scale + (spec.max_scale - spec.min_scale) * i / (n - 1))

    out: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < n:
        ratios: list[float] = []
        scales: list[float] = []
        last = layer
        while last < n and spec.strides[last] == spec.strides[layer]:
            scale = scale_at(last)
            if last == 0 and spec.reduce_boxes_in_lowest_layer:
                ratios += [1.0, 2.0, 0.5]
                scales += [0.1, scale, scale]
            else:
                for r in spec.aspect_ratios:
                    ratios.append(r)
                    scales.append(scale)
                if spec.interpolated_scale_aspect_ratio > 0:
                    nxt = 1.0 if last == n - 1 else scale_at(last + 1)
                    scales.append(math.sqrt(scale * nxt))
                    ratios.append(spec.interpolated_scale_aspect_ratio)
            last += 1
        sizes = [(s * math.sqrt(r), s / math.sqrt(r)) for s, r in zip(scales, ratios, strict=True)]
        stride = spec.strides[layer]
        fh, fw = math.ceil(height / stride), math.ceil(width / stride)
        for y in range(fh):
            for x in range(fw):
                for w, h in sizes:
                    cx = (x + spec.anchor_offset) / fw
                    cy = (y + spec.anchor_offset) / fh
                    out.append((cx, cy, 1.0, 1.0) if spec.fixed_anchor_size else (cx, cy, w, h))
        layer = last
    return np.asarray(out, dtype=np.float32)


def decode(
    spec: Any,
    outputs: list[Array],
    labels: list[str],
    width: int,
    height: int,
    anchors: Array,
    min_score: float,
    iou: float,
) -> list[Detection]:
    raw, logits = outputs[0].reshape(anchors.shape[0], -1), outputs[1].reshape(anchors.shape[0], -1)
    ax, ay, aw, ah = anchors[:, 0], anchors[:, 1], anchors[:, 2], anchors[:, 3]
    if spec.coding == "tf":
        sy, sx, sh, sw = spec.box_scales
        cy = raw[:, 0] / sy * ah + ay
        cx = raw[:, 1] / sx * aw + ax
        h = np.exp(raw[:, 2] / sh) * ah
        w = np.exp(raw[:, 3] / sw) * aw
    else:  # pixels of the input, BlazeFace style
        cx = raw[:, 0] / width * aw + ax
        cy = raw[:, 1] / height * ah + ay
        w = raw[:, 2] / width * aw
        h = raw[:, 3] / height * ah
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    probs = sigmoid(logits)
    first = 1 if spec.background_class else 0
    cls = np.argmax(probs[:, first:], axis=1) + first
    scores = probs[np.arange(len(cls)), cls]
    return select(boxes, scores, cls.astype(np.int64), labels, min_score, iou)
