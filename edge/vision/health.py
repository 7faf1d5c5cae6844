"""Camera health without a model: covered, blinded, blurred or turned away.

Each camera learns a reference from its first frames: a small grey image, its sharpness
(variance of the Laplacian) and its brightness. Then, once a second:

- covered: almost black and flat;  blinded: almost white and flat;
- turned away: the scene no longer correlates with the reference (normalised cross-correlation
  of mean-removed images, so a light change or people walking by keep it high);
- blurred: sharpness (edge energy relative to contrast, so dimmer light does not look blurred)
  below a fraction of the reference.

A condition must last ``raise_after_s`` to raise ``camera_tampered`` and be gone for
``clear_after_s`` to clear it. While the camera is healthy the reference follows slow changes
(daylight) with a small learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SIZE = (64, 36)


@dataclass
class HealthState:
    problem: str | None = None  # covered | blinded | blurred | turned_away
    since: float | None = None  # when the current condition began (raised or not)
    raised: bool = False


class CameraHealth:
    def __init__(
        self,
        raise_after_s: float = 3.0,
        clear_after_s: float = 3.0,
        learn_frames: int = 10,
        blur_ratio: float = 0.3,
        min_correlation: float = 0.35,
    ):
        self.raise_after_s, self.clear_after_s = raise_after_s, clear_after_s
        self.learn_frames, self.blur_ratio = learn_frames, blur_ratio
        self.min_correlation = min_correlation
        self.ref: np.ndarray | None = None
        self.ref_sharp = 0.0
        self.learned = 0
        self.state = HealthState()
        self.metrics: dict[str, float] = {}

    @staticmethod
    def measure(frame: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        grey = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), (320, 180))
        # edge energy relative to contrast: a dimmer light lowers both, a blur only the first
        sharp = float(cv2.Laplacian(grey, cv2.CV_64F).var()) / max(float(grey.var()), 1.0)
        small = cv2.resize(grey, SIZE, interpolation=cv2.INTER_AREA).astype(np.float32)
        return small, sharp, float(small.mean()), float(small.std())

    def diagnose(self, frame: np.ndarray) -> str | None:
        small, sharp, bright, spread = self.measure(frame)
        corr = 1.0
        if self.ref is not None:
            a, b = small - small.mean(), self.ref - self.ref.mean()
            denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
            corr = float((a * b).sum() / denom) if denom > 1e-6 else 0.0
        self.metrics = {
            "brightness": round(bright, 1),
            "contrast": round(spread, 1),
            "sharpness": round(sharp, 3),
            "reference_sharpness": round(self.ref_sharp, 3),
            "correlation": round(corr, 3),
        }
        if bright < 20 and spread < 8:
            return "covered"
        if bright > 235 and spread < 8:
            return "blinded"
        if self.learned < self.learn_frames:  # still learning what this camera sees
            self._learn(small, sharp, 1.0 / (self.learned + 1))
            self.learned += 1
            return None
        if corr < self.min_correlation:
            return "turned_away"
        if sharp < self.blur_ratio * self.ref_sharp:
            return "blurred"
        self._learn(small, sharp, 0.02)
        return None

    def _learn(self, small: np.ndarray, sharp: float, rate: float) -> None:
        self.ref = small if self.ref is None else (1 - rate) * self.ref + rate * small
        self.ref_sharp = (1 - rate) * self.ref_sharp + rate * sharp

    def update(self, frame: np.ndarray, now: float) -> tuple[str, str] | None:
        """Look at a frame; return ("raised" | "cleared", problem) when the state changes."""
        problem = self.diagnose(frame)
        st = self.state
        if problem != st.problem:
            if st.raised and problem is not None and problem != st.problem:
                st.problem = problem  # still tampered, another way: keep the raised alert
                return None
            st.problem, st.since = problem, now
            if not st.raised:
                return None
        if st.since is None:
            st.since = now
        if problem is not None and not st.raised and now - st.since >= self.raise_after_s:
            st.raised = True
            return ("raised", problem)
        if problem is None and st.raised and now - st.since >= self.clear_after_s:
            st.raised = False
            return ("cleared", "ok")
        return None
