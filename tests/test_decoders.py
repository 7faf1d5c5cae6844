"""Decoders on synthetic output tensors whose right answer is known: YOLOv5, YOLOv8 (both
layouts), int8 quantisation, SSD post-processed outputs, anchors, NMS."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.decoders import anchors, ssd, yolo
from edge.vision.decoders.common import dequantize, nms
from edge.vision.models import DecoderSpec, load_model_profile

LABELS = ["person", "cat", "rat"]


def yolov8_tensor() -> np.ndarray:
    n = 50
    t = np.zeros((4 + 3, n), np.float32)
    t[:4] = 0.1  # background boxes
    t[:4, 7] = [0.5, 0.5, 0.2, 0.4]  # a cat: centre (0.5, 0.5), 0.2 x 0.4
    t[4 + 1, 7] = 0.9
    t[:4, 8] = [0.51, 0.5, 0.2, 0.4]  # the same cat again, lower: NMS removes it
    t[4 + 1, 8] = 0.7
    t[:4, 20] = [0.2, 0.8, 0.1, 0.1]  # a rat
    t[4 + 2, 20] = 0.6
    return t[np.newaxis]


def boxes(dets: list) -> list[tuple[str, float, list[float]]]:
    return [(d.label, round(d.score, 3), [round(v, 3) for v in d.box]) for d in dets]


def test_yolov8_both_layouts() -> None:
    spec = DecoderSpec(kind="yolov8")
    want = [("cat", 0.9, [0.4, 0.3, 0.6, 0.7]), ("rat", 0.6, [0.15, 0.75, 0.25, 0.85])]
    assert boxes(yolo.decode(spec, [yolov8_tensor()], LABELS, 640, 640, 0.5, 0.45)) == want
    transposed = yolov8_tensor().transpose(0, 2, 1)  # [1, N, 4 + C]
    assert boxes(yolo.decode(spec, [transposed], LABELS, 640, 640, 0.5, 0.45)) == want


def test_yolov5_objectness_times_class_in_pixels() -> None:
    t = np.zeros((1, 10, 5 + 3), np.float32)
    t[0, 3] = [320, 320, 64, 128, 0.8, 0.1, 0.9, 0.0]  # obj 0.8 x cat 0.9 = 0.72
    t[0, 4] = [100, 100, 10, 10, 0.3, 0.9, 0.0, 0.0]  # person 0.27: below the threshold
    spec = DecoderSpec(kind="yolov5", box_units="pixels")
    got = boxes(yolo.decode(spec, [t], LABELS, 640, 640, 0.5, 0.45))
    assert got == [("cat", 0.72, [0.45, 0.4, 0.55, 0.6])]


def test_int8_outputs_are_dequantised_first() -> None:
    real = yolov8_tensor()
    scale, zero = 1 / 255, -128
    q = np.clip(np.round(real / scale + zero), -128, 127).astype(np.int8)
    back = dequantize(q, (scale, zero))
    assert np.allclose(back, real, atol=scale)
    got = yolo.decode(DecoderSpec(kind="yolov8"), [back], LABELS, 640, 640, 0.5, 0.45)
    assert [d.label for d in got] == ["cat", "rat"]
    assert abs(got[0].score - 0.9) < 0.01 and abs(got[0].box[0] - 0.4) < 0.01


def test_ssd_postprocess_four_outputs_in_any_order() -> None:
    b = np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0, 0, 0, 0]]], np.float32)
    c = np.array([[1.0, 0.0, 0.0]], np.float32)
    s = np.array([[0.8, 0.3, 0.9]], np.float32)  # the third is beyond the count
    n = np.array([2.0], np.float32)
    spec = DecoderSpec(kind="ssd_postprocess", outputs=["scores", "boxes", "count", "classes"])
    got = boxes(ssd.decode(spec, [s, b, n, c], LABELS, 0.5, 0.5))
    assert got == [("cat", 0.8, [0.2, 0.1, 0.6, 0.5])]


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("face_short_range", 896),
        ("face_full_range", 2304),
        ("person_pose", 2254),
        ("ssd_oidv4", 1917),
    ],
)
def test_anchor_counts_match_the_models(name: str, count: int) -> None:
    p = load_model_profile(name)
    a = anchors.ssd_anchors(p.decoder.anchors, p.input.width, p.input.height)
    assert a.shape == (count, 4)
    assert float(a[:, :2].min()) > 0 and float(a[:, :2].max()) < 1


def test_tf_box_coding_round_trip() -> None:
    p = load_model_profile("ssd_oidv4")
    a = anchors.ssd_anchors(p.decoder.anchors, 300, 300)
    i = 700
    ax, ay, aw, ah = a[i]
    # a box centred 0.1 right of the anchor, twice its width, same height
    raw = np.zeros((1, len(a), 4), np.float32)
    raw[0, i] = [0.0, 0.1 / aw * 10, 0.0, np.log(2.0) * 5]
    logits = np.full((1, len(a), 24), -10.0, np.float32)
    logits[0, i, 8] = 5.0  # "Cat"
    labels = [str(k) for k in range(24)]
    (d,) = anchors.decode(p.decoder, [raw, logits], labels, 300, 300, a, 0.5, 0.45)
    assert d.label == "8"
    assert np.allclose(d.box, [ax + 0.1 - aw, ay - ah / 2, ax + 0.1 + aw, ay + ah / 2], atol=1e-4)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    b = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    s = np.array([0.5, 0.9, 0.7], np.float32)
    assert nms(b, s, 0.5) == [1, 2]
