"""Where the shared test data is: ``../shared/testdata`` beside the project, or the folder
``SHIAN_TESTDATA`` names (``.ci/run`` sets a missing one to prove the tests pass without it)."""

from __future__ import annotations

from cloud.demo_setup import TESTDATA

MODELS, IMAGES, CAPTURES = TESTDATA / "models", TESTDATA / "images", TESTDATA / "scale"

__all__ = ["CAPTURES", "IMAGES", "MODELS", "TESTDATA"]
