"""The kitchen pipeline: camera -> motion gate -> detector -> rules -> evidence -> outbox.

One worker thread serves every camera at its own detect fps (the detector is shared and is the
bottleneck, so more threads would only queue for it). Per camera it also watches health
(covered, blurred, turned away) once a second, and the watchdog that reports a silent camera
offline. Detections per camera are kept for the hall screen.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.config import KitchenSettings
from edge.store.outbox import Outbox
from edge.store.snapshots import SnapshotQueue
from edge.vision.cameras import Camera, Frame
from edge.vision.decoders.common import Detection
from edge.vision.detector import Detector, find_model
from edge.vision.evidence import Evidence
from edge.vision.health import CameraHealth
from edge.vision.models import load_model_profile
from edge.vision.motion import MotionGate
from edge.vision.rules import Rules, Violation
from edge.worker import Worker

log = logging.getLogger("shian.kitchen")

Emit = Callable[[str, dict[str, Any]], object]


class Kitchen(Worker):
    def __init__(
        self,
        cfg: KitchenSettings,
        data_dir: Path,
        outbox: Outbox,
        emit: Emit,
        snapshots: SnapshotQueue,
    ) -> None:
        self.cfg, self.outbox, self.emit, self.snapshots = cfg, outbox, emit, snapshots
        self.profile_name = cfg.model
        self.detector: Detector | None = None
        if cfg.model:
            profile = load_model_profile(cfg.model)
            model_dirs = [cfg.models_dir or data_dir / "models"]
            self.detector = Detector(profile, find_model(profile, model_dirs), cfg.detector_threads)
        self.cameras = [
            Camera(
                c.name,
                c.source,
                (c.width, c.height),
                c.fps,
                cfg.stall_timeout_s,
                on_state=self._camera_state,
            )
            for c in cfg.cameras
        ]
        self.settings = {c.name: c for c in cfg.cameras}
        self.gates = {
            c.name: MotionGate((c.width, c.height), self.detector.size, c.masks)
            for c in cfg.cameras
            if self.detector is not None
        }
        self.health = {
            c.name: CameraHealth(cfg.tamper_after_s, cfg.tamper_after_s)
            for c in cfg.cameras
            if c.tamper
        }
        self.rules = Rules(cfg.rules, cfg.cameras, cfg.timezone_offset_h)
        self._load_cooldowns()
        self.evidence = Evidence(
            cfg.evidence_dir or data_dir / "evidence",
            int(cfg.evidence_quota_mb * 2**20),
            int(cfg.evidence_min_free_mb * 2**20),
        )
        self.detections: dict[str, tuple[float, list[Detection]]] = {}
        self.latency_ms: deque[float] = deque(maxlen=1000)
        self.counters = {
            "kitchen_looks": 0,
            "kitchen_motion_looks": 0,
            "kitchen_full_looks": 0,
            "kitchen_inferences": 0,
            "kitchen_violations": 0,
        }
        super().__init__("kitchen", join_s=10)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        for cam in self.cameras:
            cam.start()
        super().start()

    def stop(self) -> None:
        super().stop()
        for cam in self.cameras:
            cam.stop()

    def alive(self) -> bool:
        now = time.monotonic()
        return (
            self.running
            and now - self.alive_at < 30
            and all(c.running and now - c.alive_at < 60 for c in self.cameras)
        )

    def all_counters(self) -> dict[str, int]:
        out = dict(self.counters)
        out.update(self.evidence.counters)
        out.update(self.snapshots.counters)
        out["cameras_online"] = sum(c.online for c in self.cameras)
        return out

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        now = time.monotonic()
        due = {c.name: now for c in self.cameras}
        # stagger the full-frame looks so that nine cameras do not all ask at once
        full = {c.name: now + 1 + i * 0.37 for i, c in enumerate(self.cameras)}
        health_at = {c.name: now for c in self.cameras}
        seen = {c.name: 0 for c in self.cameras}
        while not self._stop.is_set():
            self.alive_at = now = time.monotonic()
            for cam in self.cameras:
                cam.check(now)
                frame = cam.latest
                if now < due[cam.name] or frame is None or frame.n == seen[cam.name]:
                    continue
                due[cam.name] = now + 1.0 / cam.fps
                seen[cam.name] = frame.n
                try:
                    if cam.name in self.health and now >= health_at[cam.name]:
                        health_at[cam.name] = now + 1.0
                        self._check_health(cam.name, frame, now)
                    look_full = now >= full[cam.name]
                    if look_full:
                        full[cam.name] = now + self.cfg.full_frame_every_s
                    self.look(cam.name, frame, look_full)
                except Exception:  # one bad frame never stops the kitchen
                    log.exception("camera %s: frame failed", cam.name)
            wait = min(due.values(), default=now + 0.2) - time.monotonic()
            self._stop.wait(min(0.2, max(0.005, wait)))

    def look(self, camera: str, frame: Frame, full_frame: bool = False) -> list[Violation]:
        """Motion gate, detection on what moved (or the whole frame), rules, evidence."""
        if self.detector is None:  # a box with cameras only
            return []
        self.counters["kitchen_looks"] += 1
        regions = self.gates[camera].regions(frame.image)
        if full_frame:
            self.counters["kitchen_full_looks"] += 1
            regions = [(0, 0, frame.image.shape[1], frame.image.shape[0])]
        elif regions:
            self.counters["kitchen_motion_looks"] += 1
        else:
            return []
        t0 = time.perf_counter()
        dets: list[Detection] = []
        for r in regions:
            dets += self.detector.detect(frame.image, r)
            self.counters["kitchen_inferences"] += 1
        self.latency_ms.append((time.perf_counter() - t0) * 1000)
        self.detections[camera] = (frame.at, dets)
        violations = self.rules.evaluate(camera, dets, time.monotonic())
        for v in violations:
            self.report(v, frame, dets)
        return violations

    def report(self, v: Violation, frame: Frame, dets: list[Detection]) -> None:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        snap = self.evidence.save(frame.image, dets, f"{v.camera} {v.type} {when}")
        h, w = frame.image.shape[:2]
        data = {
            "camera": v.camera,
            "type": v.type,
            "label": v.detection.label,
            "score": round(v.detection.score, 4),
            "box": [round(x, 1) for x in v.detection.box],
            "frame": [w, h],
            "zone": v.zone,
            "model": self.profile_name,
            "snapshot": snap[0] if snap else None,
        }

        def queue_snapshot(conn: Any, _queued: Any) -> None:
            if snap is not None:
                self.snapshots.add(conn, snap[0], snap[1], snap[1].stat().st_size)
            conn.execute(
                "INSERT OR REPLACE INTO cooldowns VALUES (?, ?, ?)", (v.camera, v.type, time.time())
            )

        self.outbox.enqueue_many([("violation", data, None)], also=queue_snapshot)
        self.counters["kitchen_violations"] += 1
        log.info(
            "violation %s on %s (%s %.2f)", v.type, v.camera, v.detection.label, v.detection.score
        )

    def _load_cooldowns(self) -> None:
        """Cooldowns survive a restart: a crash loop must not repeat a violation each time."""
        mono, wall = time.monotonic(), time.time()
        for camera, vtype, at in self.outbox.read("SELECT camera, type, at FROM cooldowns"):
            self.rules.last_fired[(camera, vtype)] = mono - max(0.0, wall - at)

    # -- camera events ------------------------------------------------------------------------
    def _camera_state(self, camera: str, state: str, details: dict[str, Any]) -> None:
        self._emit(f"camera_{state}", {"camera": camera, "reason": details.get("reason", "")})

    def _check_health(self, camera: str, frame: Frame, now: float) -> None:
        health = self.health[camera]
        change = health.update(frame.image, now)
        if change is not None:
            state, problem = change
            log.warning(
                "camera %s %s: %s", camera, "tampered" if state == "raised" else "ok", problem
            )
            self._emit(
                "camera_tampered",
                {"camera": camera, "state": state, "problem": problem, "metrics": health.metrics},
            )

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        try:
            self.emit(kind, data)
        except Exception:
            log.exception("could not queue %s", kind)
