"""The detector: one LiteRT interpreter shared by every camera, a model profile, a decoder.

``ai_edge_litert`` is the runtime (the renamed ``tflite-runtime``, imported as a fallback). The
model file is checked against the profile's sha256 before it is loaded, so a corrupt or wrong
model stops the agent at start with a clear error rather than detecting nonsense.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.vision.decoders import anchors as anchor_dec
from edge.vision.decoders import ssd as ssd_dec
from edge.vision.decoders import yolo as yolo_dec
from edge.vision.decoders.common import Array, Detection, dequantize
from edge.vision.models import ModelProfile, sha256_of

log = logging.getLogger("shian.detector")

Region = tuple[int, int, int, int]  # x, y, w, h in the frame


class ModelError(Exception):
    """The model cannot be used: missing, wrong sha256, corrupt, or not what the profile says."""


def interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelError(
                "no LiteRT runtime: pip install ai-edge-litert (or tflite-runtime)"
            ) from None
    return Interpreter


def find_model(profile: ModelProfile, dirs: list[Path]) -> Path:
    for d in dirs:
        p = d / profile.file
        if p.exists():
            return p
    where = ", ".join(str(d) for d in dirs)
    raise ModelError(
        f"model file {profile.file} not found in {where} (shian-edge models install puts it there)"
    )


class Detector:
    def __init__(self, profile: ModelProfile, model_path: Path, threads: int = 2) -> None:
        self.profile = profile
        digest = sha256_of(model_path)
        if digest != profile.sha256:
            raise ModelError(
                f"{model_path}: sha256 {digest} is not the profile's "
                f"{profile.sha256} (corrupt or a different model)"
            )
        try:
            self.interp = interpreter_class()(model_path=str(model_path), num_threads=threads)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_path}: cannot load: {exc}") from None
        inp = self.interp.get_input_details()[0]
        _, h, w, _ = inp["shape"]
        if (w, h) != (profile.input.width, profile.input.height):
            raise ModelError(
                f"{model_path}: input is {w}x{h}, the profile says "
                f"{profile.input.width}x{profile.input.height}"
            )
        self.input_index = inp["index"]
        self.input_dtype = inp["dtype"]
        self.input_quant = inp["quantization"]
        self.outputs = self.interp.get_output_details()
        self.labels = profile.labels or _read_labels(model_path.parent / str(profile.labels_file))
        self.anchors: Array | None = None
        if profile.decoder.kind == "anchors":
            self.anchors = anchor_dec.ssd_anchors(profile.decoder.anchors, w, h)
        self._lock = threading.Lock()
        self.invocations = 0

    @property
    def size(self) -> int:
        return max(self.profile.input.width, self.profile.input.height)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """A BGR image (any size, ideally square) to the model's input tensor."""
        spec = self.profile.input
        img = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
        if spec.color == "rgb":
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if self.input_dtype == np.float32:
            t = (img.astype(np.float32) - spec.mean) / spec.std
        else:  # quantised input: real = (q - zero) * scale
            scale, zero = self.input_quant
            real = (img.astype(np.float32) - spec.mean) / spec.std
            info = np.iinfo(self.input_dtype)
            t = np.clip(np.round(real / scale + zero), info.min, info.max).astype(self.input_dtype)
        return t[np.newaxis]

    def invoke(self, tensor: np.ndarray) -> list[Array]:
        with self._lock:
            self.interp.set_tensor(self.input_index, tensor)
            self.interp.invoke()
            self.invocations += 1
            return [
                dequantize(self.interp.get_tensor(o["index"]), o["quantization"])
                for o in self.outputs
            ]

    def decode(self, outputs: list[Array]) -> list[Detection]:
        p, d = self.profile, self.profile.decoder
        w, h = p.input.width, p.input.height
        if d.kind == "anchors":
            assert self.anchors is not None
            return anchor_dec.decode(
                d, outputs, self.labels, w, h, self.anchors, p.min_score, p.iou
            )
        if d.kind == "ssd_postprocess":
            return ssd_dec.decode(d, outputs, self.labels, p.min_score, p.iou)
        return yolo_dec.decode(d, outputs, self.labels, w, h, p.min_score, p.iou)

    def detect(self, frame: np.ndarray, region: Region | None = None) -> list[Detection]:
        """Detections in frame pixels. The region (or the whole frame) is letterboxed to a
        square so that objects keep their shape."""
        x0, y0, rw, rh = region or (0, 0, frame.shape[1], frame.shape[0])
        crop = frame[y0 : y0 + rh, x0 : x0 + rw]
        sx, sy = rw, rh
        if rw != rh and self.profile.input.resize == "letterbox":
            sx = sy = max(rw, rh)
            square = np.zeros((sy, sx, 3), dtype=frame.dtype)
            square[:rh, :rw] = crop
            crop = square
        dets = self.decode(self.invoke(self.prepare(crop)))
        out = []
        for det in dets:
            x1, y1, x2, y2 = det.box
            box = (x0 + x1 * sx, y0 + y1 * sy, x0 + min(x2 * sx, rw), y0 + min(y2 * sy, rh))
            if box[2] > box[0] and box[3] > box[1]:
                out.append(Detection(det.label, det.score, box))
        return out


def _read_labels(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise ModelError(f"labels file {path}: {exc.strerror}") from None
