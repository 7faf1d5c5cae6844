"""What one write of the collector carries: dead letters, snapshots, and what came of it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from shared import topics
from shared.models import Envelope


@dataclass
class DeadLetter:
    topic: str
    payload: bytes
    reason: str


@dataclass
class Snapshot:
    device: str
    id: str
    data: bytes

    def refused(self, reason: str) -> DeadLetter:
        """Its dead letter: what it was, not its bytes (a refused picture is no evidence)."""
        note = json.dumps({"snapshot": self.id, "bytes": len(self.data)}).encode()
        return DeadLetter(topics.snapshot(self.device, self.id), note, reason)


@dataclass
class WriteResult:
    inserted: int = 0
    duplicates: int = 0
    deadletters: int = 0
    new_gaps: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    accepted: list[Envelope] = field(default_factory=list)
    """The events stored now or before (a box may forget them); not the dead letters."""
    snapshots: list[Snapshot] = field(default_factory=list)
    """The snapshots stored now or before, likewise."""
