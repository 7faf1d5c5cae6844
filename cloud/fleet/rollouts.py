"""Rollouts: one update for a set of boxes, sent in stages, halted by too many failures.

A rollout lists its boxes in a fixed (shuffled) order and the share of them each stage
reaches (``--stages 10,50,100``: cumulative per cent). Each box gets its own update, signed,
numbered after its last one, retained on its ``cmd/update`` topic: a box offline takes it
when it returns. The next stage goes out when every box of the stages so far has applied
it; more than ``max_failures`` boxes rolling back or refusing halt the rollout, and the
updates not yet taken are withdrawn (their retained message cleared).

Outcomes arrive as ``update`` events from the boxes (``record``, in the collector's write
transaction); the stages move on in the collector's once-a-second tick (``tick``).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from typing import Any

from cloud.alerts.tables import fetch
from cloud.config import CloudConfig
from cloud.db.base import Conn
from cloud.fleet.keys import FleetKey
from cloud.outbox import queue_message
from shared import topics
from shared.models import Envelope
from shared.updates import Kind, Update, sign

FINAL = ("applied", "rolled_back", "refused", "superseded", "withdrawn")
"""A box whose update is in one of these is done with it; the stage may move on."""
FAILED = ("rolled_back", "refused")


def update_topic(device: str) -> str:
    return topics.command(device, "update")


class Rollouts:
    def __init__(self, cfg: CloudConfig) -> None:
        self.cfg = cfg
        self.key = FleetKey(cfg.data_dir / "fleet")

    def create(
        self,
        conn: Conn,
        kind: Kind,
        part: dict[str, Any],
        targets: list[str],
        stages: list[int],
        now: float,
        health_s: float | None = None,
        max_failures: int | None = None,
    ) -> str:
        """Start a rollout of ``part`` (the update's config, model or software) to
        ``targets``; its first stage is queued at once. Returns its id."""
        if not targets:
            raise ValueError("no box to update")
        conn.lock("fleet")  # collectors sharing a database: one at a time
        if not stages or stages != sorted(stages) or stages[-1] > 100 or stages[0] < 1:
            raise ValueError(f"stages must rise from 1 to at most 100 per cent, not {stages}")
        order = list(targets)
        random.shuffle(order)  # a stage is a sample of the fleet, not its first names
        rid = uuid.uuid4().hex
        f = self.cfg.fleet
        conn.execute(
            "INSERT INTO fleet_rollouts (id, kind, part, targets, stages, stage, max_failures,"
            " health_s, state, created, updated) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 'running', ?, ?)",
            (
                rid,
                kind,
                json.dumps(part),
                json.dumps(order),
                json.dumps(stages),
                f.max_failures if max_failures is None else max_failures,
                f.health_s if health_s is None else health_s,
                now,
                now,
            ),
        )
        self._send(conn, self._rollout(conn, rid), now)
        return rid

    def _rollout(self, conn: Conn, rid: str) -> dict[str, Any]:
        found = fetch(conn, "SELECT * FROM fleet_rollouts WHERE id = ?", (rid,))
        if not found:
            raise ValueError(f"no rollout {rid}")
        r = found[0]
        for k in ("part", "targets", "stages"):
            r[k] = json.loads(r[k])
        return r

    @staticmethod
    def _reached(r: dict[str, Any]) -> list[str]:
        """The boxes the stages so far reach."""
        share = r["stages"][r["stage"]]
        targets: list[str] = r["targets"]
        return targets[: max(1, math.ceil(len(targets) * share / 100))]

    def _send(self, conn: Conn, r: dict[str, Any], now: float) -> None:
        sent = {
            row[0]
            for row in conn.execute(
                "SELECT device FROM fleet_updates WHERE rollout = ?", (r["id"],)
            ).fetchall()
        }
        key = self.key.private()
        for device in self._reached(r):
            if device in sent:
                continue
            (last,) = conn.execute(
                "SELECT coalesce(max(n), 0) FROM fleet_updates WHERE device = ?", (device,)
            ).fetchone()
            # an older update the box has not taken is replaced by this one (retained: the
            # box only ever sees the newest, and takes only a higher number)
            conn.execute(
                "UPDATE fleet_updates SET state = 'superseded', updated = ?"
                " WHERE device = ? AND state = 'sent'",
                (now, device),
            )
            update = Update(
                id=uuid.uuid4().hex,
                rollout=r["id"],
                device=device,
                n=int(last) + 1,
                kind=r["kind"],
                created=now,
                health_s=r["health_s"],
                files_url=self.cfg.fleet.files_url,
                **{r["kind"]: r["part"]},
            )
            conn.execute(
                "INSERT INTO fleet_updates (id, rollout, device, n, kind, state, sent, updated)"
                " VALUES (?, ?, ?, ?, ?, 'sent', ?, ?)",
                (update.id, r["id"], device, update.n, update.kind, now, now),
            )
            queue_message(conn, update_topic(device), sign(key, update).decode(), now, True)

    def record(self, conn: Conn, events: list[Envelope], now: float) -> None:
        """Outcomes reported by the boxes (each only for its own update)."""
        for e in events:
            if e.kind != "update":
                continue
            d = e.data
            conn.execute(
                "UPDATE fleet_updates SET state = ?, detail = ?, version = ?, updated = ?"
                " WHERE id = ? AND device = ?",
                (
                    d["outcome"],
                    d.get("detail", ""),
                    d.get("version", ""),
                    now,
                    d["update"],
                    e.device,
                ),
            )

    def tick(self, conn: Conn, now: float) -> None:
        """Move running rollouts on: halt one with too many failures, else send its next
        stage once every box reached so far has applied the update."""
        conn.lock("fleet")
        running = conn.execute("SELECT id FROM fleet_rollouts WHERE state = 'running'").fetchall()
        for (rid,) in running:
            r = self._rollout(conn, rid)
            states = self._states(conn, rid)
            failed = [d for d, s in states.items() if s in FAILED]
            if len(failed) > r["max_failures"]:
                self._halt(
                    conn, r, states, f"{len(failed)} boxes failed: {', '.join(failed[:5])}", now
                )
            elif all(states.get(d) in FINAL for d in self._reached(r)):
                if r["stage"] + 1 < len(r["stages"]):
                    conn.execute(
                        "UPDATE fleet_rollouts SET stage = stage + 1, updated = ? WHERE id = ?",
                        (now, rid),
                    )
                    self._send(conn, self._rollout(conn, rid), now)
                else:
                    conn.execute(
                        "UPDATE fleet_rollouts SET state = 'done', updated = ? WHERE id = ?",
                        (now, rid),
                    )

    def halt(self, conn: Conn, rid: str, why: str, now: float) -> None:
        """Stop a rollout by hand (``fleet halt``): what boxes have not taken is withdrawn."""
        conn.lock("fleet")
        r = self._rollout(conn, rid)
        self._halt(conn, r, self._states(conn, rid), why, now)

    @staticmethod
    def _states(conn: Conn, rid: str) -> dict[str, str]:
        """Each box of the rollout and where its update stands."""
        rows = conn.execute("SELECT device, state FROM fleet_updates WHERE rollout = ?", (rid,))
        return dict(rows.fetchall())

    def _halt(
        self, conn: Conn, r: dict[str, Any], states: dict[str, str], why: str, now: float
    ) -> None:
        for device, state in states.items():
            if state == "sent":  # not taken yet: withdrawn (a later update would be 'superseded'
                # this one, so the box's retained message is still this rollout's)
                queue_message(conn, update_topic(device), "", now, retain=True)
                conn.execute(
                    "UPDATE fleet_updates SET state = 'withdrawn', updated = ?"
                    " WHERE rollout = ? AND device = ?",
                    (now, r["id"], device),
                )
        conn.execute(
            "UPDATE fleet_rollouts SET state = 'halted', note = ?, updated = ? WHERE id = ?",
            (why, now, r["id"]),
        )
