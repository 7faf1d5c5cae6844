"""The whole kitchen pipeline on videos made from the test photos: an animal entering gives
exactly one violation with its snapshot; a still scene gives none; a camera that dies is
reported offline and back online; a covered camera raises camera_tampered and clears."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge.config import KitchenSettings
from edge.store.outbox import Outbox
from edge.store.snapshots import SnapshotQueue
from edge.vision.kitchen import Kitchen
from edge.vision.scenes import empty_scene, intruder_scene, write_video
from tests.conftest import wait_for
from tests.real.test_detector_real import IMAGES, MODELS, TESTDATA

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not TESTDATA.exists(), reason=f"{TESTDATA} missing (the shared test data)"),
]

ANIMALS = {
    "violation": "animal_in_kitchen",
    "labels": ["Cat", "Dog"],
    "min_score": 0.5,
    "persistence": (2, 3),
    "cooldown_s": 300,
}


def kitchen(tmp_path: Path, cameras: list[dict[str, Any]], **extra: Any) -> tuple[Kitchen, Outbox]:
    cfg = KitchenSettings.model_validate(
        {
            "model": "ssd_oidv4",
            "models_dir": str(MODELS),
            "cameras": cameras,
            "rules": [ANIMALS],
            "stall_timeout_s": 2,
            "tamper_after_s": 2,
            "full_frame_every_s": 3,
            **extra,
        }
    )
    outbox = Outbox(tmp_path / "outbox.db", "kitchen-1", "canteen-1")
    k = Kitchen(cfg, tmp_path, outbox, outbox.enqueue, SnapshotQueue(outbox))
    return k, outbox


def events(outbox: Outbox, kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in reversed(outbox.recent(10_000)) if e["kind"] == kind]


def test_an_animal_walking_in_gives_exactly_one_violation(tmp_path: Path) -> None:
    video = write_video(
        tmp_path / "cat.avi",
        intruder_scene(IMAGES / "hot_dog.jpg", IMAGES / "cat_720p.jpg", (140, 100, 910, 720)),
    )
    k, outbox = kitchen(tmp_path, [{"name": "cam1", "source": str(video)}])
    k.start()
    try:
        wait_for(lambda: events(outbox, "violation"), timeout=30, what="a violation")
        # watch the looping video once more: the cat comes again, the cooldown holds
        wait_for(lambda: k.cameras[0].counters["frames"] >= 170, timeout=60, what="2 loops")
    finally:
        k.stop()
    (v,) = events(outbox, "violation")
    assert v["type"] == "animal_in_kitchen" and v["label"] == "Cat" and v["camera"] == "cam1"
    assert v["frame"] == [640, 360] and v["model"] == "ssd_oidv4"
    x1, _, _, y2 = v["box"]
    assert x1 > 250 and y2 > 250, "the box is on the cat, which came in at the bottom right"
    snap = Path(k.evidence.path(v["snapshot"]))
    assert cv2.imread(str(snap)).shape == (360, 640, 3)
    assert k.snapshots.pending()[0].id == v["snapshot"]
    assert k.counters["kitchen_motion_looks"] > 0


def test_a_still_scene_gives_nothing_and_costs_no_inference_between_checks(
    tmp_path: Path,
) -> None:
    video = write_video(tmp_path / "still.avi", empty_scene(IMAGES / "hot_dog.jpg", seconds=4))
    k, outbox = kitchen(tmp_path, [{"name": "cam1", "source": str(video)}])
    k.start()
    try:
        wait_for(lambda: k.counters["kitchen_full_looks"] >= 2, timeout=30, what="full looks")
    finally:
        k.stop()
    assert events(outbox, "violation") == []
    assert k.counters["kitchen_motion_looks"] == 0, "sensor noise is not motion"
    assert k.counters["kitchen_inferences"] == k.counters["kitchen_full_looks"]


def test_a_camera_that_dies_is_reported_and_recovers(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    still = empty_scene(IMAGES / "hot_dog.jpg", seconds=0.3)
    for i, f in enumerate(still):
        cv2.imwrite(str(folder / f"{i}.jpg"), f)
    k, outbox = kitchen(tmp_path, [{"name": "cam1", "source": f"images:{folder}", "fps": 5}])
    k.start()
    try:
        wait_for(lambda: events(outbox, "camera_online"), timeout=20, what="online")
        gone = tmp_path / "gone"
        folder.rename(gone)  # the camera dies (its source disappears)
        wait_for(lambda: events(outbox, "camera_offline"), timeout=20, what="offline")
        gone.rename(folder)  # and comes back
        wait_for(lambda: len(events(outbox, "camera_online")) == 2, timeout=40, what="back")
    finally:
        k.stop()
    assert len(events(outbox, "camera_offline")) == 1, "one report per outage"


def test_a_covered_camera_raises_tampered_and_clears(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    view = cv2.resize(cv2.imread(str(IMAGES / "hot_dog.jpg")), (640, 360))
    cv2.imwrite(str(folder / "0.png"), view)
    k, outbox = kitchen(tmp_path, [{"name": "cam1", "source": f"images:{folder}", "fps": 5}])
    k.start()
    try:
        wait_for(lambda: k.health["cam1"].learned >= 10, timeout=30, what="learned view")
        cv2.imwrite(str(folder / "0.png"), np.zeros_like(view))  # a hand over the lens
        raised = wait_for(lambda: events(outbox, "camera_tampered"), timeout=20, what="raised")
        assert raised[0]["state"] == "raised" and raised[0]["problem"] == "covered"
        cv2.imwrite(str(folder / "0.png"), view)
        wait_for(lambda: len(events(outbox, "camera_tampered")) == 2, timeout=20, what="cleared")
    finally:
        k.stop()
    assert events(outbox, "camera_tampered")[1]["state"] == "cleared"
    json.dumps(events(outbox, "camera_tampered"))  # metrics are plain numbers
    shutil.rmtree(folder)


def test_the_cooldown_survives_a_restart(tmp_path: Path) -> None:
    video = write_video(
        tmp_path / "cat.avi",
        intruder_scene(
            IMAGES / "hot_dog.jpg",
            IMAGES / "cat_720p.jpg",
            (140, 100, 910, 720),
            seconds=4,
            enter_at=0.3,
        ),
    )
    k, outbox = kitchen(tmp_path, [{"name": "cam1", "source": str(video)}])
    k.start()
    try:
        wait_for(lambda: events(outbox, "violation"), timeout=30, what="a violation")
    finally:
        k.stop()
    outbox.close()
    k, outbox = kitchen(tmp_path, [{"name": "cam1", "source": str(video)}])  # restarted
    k.start()
    try:
        wait_for(
            lambda: k.counters["kitchen_motion_looks"] + k.counters["kitchen_full_looks"] >= 10,
            timeout=30,
            what="ten looks at the cat",
        )
    finally:
        k.stop()
    assert len(events(outbox, "violation")) == 1


def test_a_network_camera_switched_off_and_on(tmp_path: Path) -> None:
    from tests.support.mjpeg import MjpegCamera

    view = cv2.resize(cv2.imread(str(IMAGES / "hot_dog.jpg")), (640, 360))
    cam = MjpegCamera(view).start()
    k, outbox = kitchen(tmp_path, [{"name": "door", "source": cam.url, "fps": 5}])
    k.start()
    try:
        wait_for(lambda: events(outbox, "camera_online"), timeout=30, what="the stream")
        cam.stop()
        wait_for(lambda: events(outbox, "camera_offline"), timeout=30, what="offline")
        cam = MjpegCamera(view, port=cam.port).start()
        wait_for(lambda: len(events(outbox, "camera_online")) == 2, timeout=60, what="back")
    finally:
        k.stop()
        cam.stop()
    assert len(events(outbox, "camera_offline")) == 1
