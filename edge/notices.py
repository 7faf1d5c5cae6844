"""Rectification notices for the business, as the regulator sends them (retained on
``cmd/notice/{alert id}``), kept in the box database; and the business's answer: a
``rectification`` event with an optional photo, sent like any evidence.

``shian-edge notices list`` shows them; ``shian-edge notices rectify ID [--photo FILE]``
answers one (the local screen will too).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from edge.store.outbox import Outbox, OutboxError
from edge.store.snapshots import SnapshotQueue
from shared.ids import uuid7

log = logging.getLogger("shian.notices")


class Notices:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def on_notice(self, rest: str, payload: bytes) -> None:
        """``cmd/notice/{id}``: the alert as it now stands (empty: withdrawn)."""
        alert_id = rest.partition("/")[2]
        if not alert_id:
            raise ValueError("notice topic without an alert id")
        with self.outbox.transaction() as conn:
            if not payload:
                conn.execute("DELETE FROM notices WHERE id = ?", (alert_id,))
                return
            data = json.loads(payload)
            if data.get("id") != alert_id:
                raise ValueError(f"notice for {data.get('id')} on the topic of {alert_id}")
            conn.execute(
                "INSERT INTO notices (id, data, received) VALUES (?, ?, ?) ON CONFLICT(id) DO "
                "UPDATE SET data = excluded.data, received = excluded.received",
                (alert_id, json.dumps(data, ensure_ascii=False), self.outbox.clock()),
            )
        log.info("notice %s: %s (%s)", alert_id, data.get("title"), data.get("state"))

    def on_reply(self, _rest: str, payload: bytes) -> None:
        """``cmd/reply``: the collector's answer to a rectification (done, or why not)."""
        reply = json.loads(payload)
        alert = (reply.get("alert") or {}).get("id")
        if not reply.get("ok"):
            log.warning("rectification refused: %s", reply.get("reason"))
        with self.outbox.transaction() as conn:
            conn.execute(
                "UPDATE notices SET reply = ? WHERE id = ?",
                (json.dumps(reply, ensure_ascii=False), alert),
            )

    def list(self) -> list[dict[str, Any]]:
        out = []
        for data, received, answered, reply in self.outbox.read(
            "SELECT data, received, answered, reply FROM notices ORDER BY received DESC"
        ):
            d = json.loads(data)
            d.update(
                received=received, answered=answered, reply=json.loads(reply) if reply else None
            )
            out.append(d)
        return out

    def rectify(
        self, alert_id: str, note: str, photo: Path | None = None, evidence_dir: Path | None = None
    ) -> str:
        """Queue the business's rectification (and its photo); the event id."""
        rows = self.outbox.read("SELECT data FROM notices WHERE id = ?", (alert_id,))
        if not rows:
            raise OutboxError(f"no notice {alert_id} on this box (shian-edge notices list)")
        state = json.loads(rows[0][0])["state"]
        if state != "rectification_requested":
            raise OutboxError(f"notice {alert_id} is {state}: nothing to rectify now")
        snap: tuple[str, Path] | None = None
        if photo is not None:
            snap = self.keep_photo(photo, evidence_dir or Path("."))
        snapshots = SnapshotQueue(self.outbox)

        def also(conn: Any, _queued: Any) -> None:
            if snap is not None:
                snapshots.add(conn, snap[0], snap[1], snap[1].stat().st_size)
            conn.execute(
                "UPDATE notices SET answered = ? WHERE id = ?", (self.outbox.clock(), alert_id)
            )

        data = {"alert": alert_id, "note": note, "photo": snap[0] if snap else None}
        queued = self.outbox.enqueue_many([("rectification", data, None)], also=also)
        return queued[0].id

    @staticmethod
    def keep_photo(photo: Path, folder: Path) -> tuple[str, Path]:
        """The photo as a JPEG in the evidence folder, named by a new snapshot id (a
        rectification's, a delivery's licence or test report)."""
        data = photo.read_bytes()
        snap_id = str(uuid7())
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"{snap_id}.jpg"
        if data.startswith(b"\xff\xd8\xff"):
            shutil.copyfile(photo, dest)
        else:
            import cv2

            img = cv2.imread(str(photo))
            if img is None:
                raise OutboxError(f"{photo} is not an image")
            _ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
            dest.write_bytes(jpg.tobytes())
        return snap_id, dest
