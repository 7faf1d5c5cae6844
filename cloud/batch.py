"""What one write of the collector carries: dead letters, snapshots, and what came of it."""

from __future__ import annotations

from dataclasses import dataclass, field

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
