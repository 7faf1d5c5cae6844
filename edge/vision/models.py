"""Model profiles (``firmware_profiles/models/*.toml``): file, sha256, input, normalisation,
output decoder, labels, and where ``shian-edge models install`` gets the file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from shared.assets import profiles_dir
from shared.config import StrictModel, load
from shared.fetch import SourceSpec


class AnchorSpec(StrictModel):
    """SSD anchor generator settings (TF object detection API / MediaPipe)."""

    num_layers: int = Field(ge=1, description="Feature map layers.")
    min_scale: float = Field(description="Smallest anchor scale.")
    max_scale: float = Field(description="Largest anchor scale.")
    strides: list[int] = Field(description="Stride of each layer.")
    aspect_ratios: list[float] = Field(default=[1.0], description="Anchor aspect ratios.")
    interpolated_scale_aspect_ratio: float = Field(
        default=1.0, description="Aspect of the extra interpolated-scale anchor; 0 for none."
    )
    reduce_boxes_in_lowest_layer: bool = Field(
        default=False, description="Three anchors only in the first layer."
    )
    fixed_anchor_size: bool = Field(default=False, description="Anchors of size 1 (BlazeFace).")
    anchor_offset: float = Field(default=0.5, description="Centre offset within a cell.")

    @model_validator(mode="after")
    def _strides(self) -> AnchorSpec:
        if len(self.strides) != self.num_layers:
            raise ValueError("strides must list one stride per layer")
        return self


class DecoderSpec(StrictModel):
    """How to read the model's outputs."""

    kind: Literal["ssd_postprocess", "anchors", "yolov5", "yolov8"] = Field(
        description="ssd_postprocess (4 outputs), anchors (raw SSD / BlazeFace), yolov5, yolov8."
    )
    anchors: AnchorSpec | None = Field(default=None, description="For kind = anchors.")
    coding: Literal["tf", "pixels"] = Field(
        default="tf", description="anchors: tf box coder, or offsets in input pixels."
    )
    box_scales: list[float] = Field(
        default=[10.0, 10.0, 5.0, 5.0], description="anchors/tf: y, x, h, w scales."
    )
    background_class: bool = Field(default=False, description="Class 0 is background.")
    outputs: list[Literal["boxes", "classes", "scores", "count"]] = Field(
        default=["boxes", "classes", "scores", "count"],
        description="ssd_postprocess: the order of the four outputs.",
    )
    class_offset: int = Field(default=0, description="ssd_postprocess: added to class ids.")
    box_units: Literal["normalized", "pixels"] = Field(
        default="normalized", description="yolo: boxes in 0..1 or in input pixels."
    )

    @model_validator(mode="after")
    def _needs_anchors(self) -> DecoderSpec:
        if self.kind == "anchors" and self.anchors is None:
            raise ValueError("kind = anchors needs [decoder.anchors]")
        return self


class InputSpec(StrictModel):
    """The model's input and its normalisation (float inputs: (pixel - mean) / std)."""

    width: int = Field(ge=8, description="Input width, pixels.")
    height: int = Field(ge=8, description="Input height, pixels.")
    mean: float = Field(default=0.0, description="Subtracted from each 0..255 channel value.")
    std: float = Field(default=1.0, gt=0, description="Then divided by this.")
    color: Literal["rgb", "bgr"] = Field(default="rgb", description="Channel order.")
    resize: Literal["letterbox", "stretch"] = Field(
        default="letterbox",
        description="How a non-square image meets a square input: padded (letterbox), or "
        "stretched as the model was trained (TF object detection API SSDs).",
    )


class ModelProfile(StrictModel):
    """One detection model."""

    title: str = Field(description="What the model is.")
    file: str = Field(description="Model file name (looked up in the models directory).")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file.")
    license: str = Field(default="", description="The model's licence.")
    labels: list[str] | None = Field(default=None, description="Class labels.")
    labels_file: str | None = Field(default=None, description="Or a labels file beside it.")
    labels_sha256: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the labels_file."
    )
    min_score: float = Field(default=0.5, ge=0, le=1, description="Detections below are dropped.")
    iou: float = Field(default=0.45, gt=0, le=1, description="NMS overlap threshold.")
    source: SourceSpec | None = Field(default=None, description="Where to install it from.")
    input: InputSpec = Field(description="Input.")
    decoder: DecoderSpec = Field(description="Output decoder.")

    @model_validator(mode="after")
    def _labels(self) -> ModelProfile:
        if (self.labels is None) == (self.labels_file is None):
            raise ValueError("give exactly one of labels and labels_file")
        if self.labels_file and self.source and self.source.labels and not self.labels_sha256:
            raise ValueError("a labels file fetched from a source needs labels_sha256")
        return self


def model_names() -> list[str]:
    return sorted(p.stem for p in (profiles_dir() / "models").glob("*.toml"))


def load_model_profile(name: str) -> ModelProfile:
    path = Path(name) if Path(name).suffix else profiles_dir() / "models" / f"{name}.toml"
    if not path.exists():
        raise FileNotFoundError(f"no model profile {name!r}; known: {', '.join(model_names())}")
    return load(path, ModelProfile)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
