"""Real models on real photos (../shared/testdata): animals give animal_in_kitchen with boxes
on the animal, faces are found; a corrupt or wrong model is refused at start."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import RuleSettings
from edge.vision.detector import Detector, ModelError, find_model
from edge.vision.models import load_model_profile
from edge.vision.rules import Rules
from tests.support.data import IMAGES, MODELS, TESTDATA

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not TESTDATA.exists(), reason=f"{TESTDATA} missing (the shared test data)"),
]

# Measured by hand on the photos (x1, y1, x2, y2), tails and ears included.
HAND = {
    "pets.jpg": [("Dog", (105, 10, 262, 295)), ("Dog", (345, 165, 495, 362))],
    "cat_720p.jpg": [("Cat", (140, 100, 910, 720))],
}


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


@pytest.fixture(scope="module")
def ssd() -> Detector:
    p = load_model_profile("ssd_oidv4")
    return Detector(p, find_model(p, [MODELS]))


@pytest.mark.parametrize("image", sorted(HAND))
def test_animals_are_found_where_they_are(ssd: Detector, image: str) -> None:
    dets = ssd.detect(cv2.imread(str(IMAGES / image)))
    animals = [d for d in dets if d.label in ("Cat", "Dog")]
    assert len(animals) == len(HAND[image])
    for label, box in HAND[image]:
        best = max((d for d in animals if d.label == label), key=lambda d: iou(d.box, box))
        assert iou(best.box, box) >= 0.75, (best, box)
        assert best.score >= 0.7


def test_animals_make_animal_in_kitchen(ssd: Detector) -> None:
    rules = Rules(
        [RuleSettings(violation="animal_in_kitchen", labels=["Cat", "Dog"], persistence=(1, 1))], []
    )
    for image in HAND:
        dets = ssd.detect(cv2.imread(str(IMAGES / image)))
        (v,) = rules.evaluate(image, dets, 0.0)
        assert v.type == "animal_in_kitchen" and v.detection.label in ("Cat", "Dog")


def test_no_animal_in_a_crowd(ssd: Detector) -> None:
    dets = ssd.detect(cv2.imread(str(IMAGES / "kite_and_cold.jpg")))
    assert not [d for d in dets if d.label in ("Cat", "Dog")]


@pytest.mark.parametrize("model", ["face_short_range", "face_full_range"])
def test_faces_are_found(model: str) -> None:
    p = load_model_profile(model)
    det = Detector(p, find_model(p, [MODELS]))
    faces = det.detect(cv2.imread(str(IMAGES / "face.jpg")))
    assert len(faces) >= 2 and all(f.label == "face" for f in faces)
    # the two people in front, found by both models: left face about x 125-230, right 245-355
    xs = sorted((f.box[0] + f.box[2]) / 2 for f in faces if f.score > 0.8)
    assert any(150 < x < 210 for x in xs) and any(270 < x < 330 for x in xs)


def test_person_detector_on_a_person() -> None:
    p = load_model_profile("person_pose")
    det = Detector(p, find_model(p, [MODELS]))
    assert [d.label for d in det.detect(cv2.imread(str(IMAGES / "squat.jpg")))] == ["person"]
    assert det.detect(np.full((360, 640, 3), 128, np.uint8)) == []


def test_wrong_sha256_and_corrupt_models_are_refused(tmp_path: Path) -> None:
    p = load_model_profile("face_short_range")
    other = tmp_path / p.file
    shutil.copyfile(MODELS / "face_detection_full_range.tflite", other)
    with pytest.raises(ModelError, match=r"sha256 .* is not the profile.s"):
        Detector(p, other)
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"not a flatbuffer" * 100)
    import hashlib

    bad = p.model_copy(update={"sha256": hashlib.sha256(corrupt.read_bytes()).hexdigest()})
    with pytest.raises(ModelError, match="cannot load"):
        Detector(bad, corrupt)
    with pytest.raises(ModelError, match="not found in"):
        find_model(p, [tmp_path / "nowhere"])
