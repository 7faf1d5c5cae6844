"""A kitchen box end to end: a cat on camera becomes a violation in the cloud with its
evidence snapshot stored once and served."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from cloud.service import CloudService
from edge.agent import Agent
from edge.vision.scenes import intruder_scene, write_video
from tests.conftest import cloud_config, edge_config, register, wait_for
from tests.real.test_detector_real import IMAGES, MODELS, TESTDATA
from tests.real.test_kitchen_pipeline import ANIMALS
from tests.support.mosquitto import Mosquitto, free_port

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not TESTDATA.exists(), reason=f"{TESTDATA} missing (the shared test data)"),
]


def test_violation_and_snapshot_reach_the_cloud(tmp_path: Path, mosquitto: Mosquitto) -> None:
    web = free_port()
    cloud = CloudService(cloud_config(tmp_path, mosquitto.url, web_port=web))
    register(cloud.store, "kitchen-1", "canteen-001")
    cloud.start()
    video = write_video(
        tmp_path / "cat.avi",
        intruder_scene(
            IMAGES / "hot_dog.jpg",
            IMAGES / "cat_720p.jpg",
            (140, 100, 910, 720),
            seconds=5,
            enter_at=0.5,
        ),
    )
    agent = Agent(
        edge_config(
            tmp_path,
            mosquitto.url,
            kitchen={
                "model": "ssd_oidv4",
                "models_dir": str(MODELS),
                "rules": [ANIMALS],
                "cameras": [{"name": "cam1", "source": str(video)}],
            },
        )
    )
    agent.start()
    try:
        (v,) = wait_for(
            lambda: cloud.store.events.list(kind="violation"),
            timeout=60,
            what="the violation in the cloud",
        )
        snap_id = v["data"]["snapshot"]
        row = wait_for(lambda: cloud.store.evidence.get(snap_id), timeout=30, what="its snapshot")
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/snap/{snap_id}.jpg") as r:
            body = r.read()
            assert r.headers["content-type"] == "image/jpeg"
        assert (
            body
            == Path(row["path"]).read_bytes()
            == agent.kitchen.evidence.path(snap_id).read_bytes()
        )
        wait_for(lambda: agent.snapshots.depth() == 0, what="the snapshot confirmed")
        wait_for(
            lambda: any(e["kind"] == "camera_online" for e in cloud.store.events.list()),
            what="camera_online in the cloud",
        )
    finally:
        agent.stop()
        cloud.stop()
