"""Records made on the box's screen (morning checks, disinfection runs): each is an event in the
outbox, and a row in a local table (written in the same transaction) so that the hall screen
can show today's records long after the events have been confirmed and pruned."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from edge.store.outbox import Outbox


class Records:
    def __init__(self, outbox: Outbox, tz_offset_h: float = 8) -> None:
        self.outbox = outbox
        self.tz = timezone(timedelta(hours=tz_offset_h))

    def add(self, kind: str, data: dict[str, Any]) -> str:
        def also(conn: Any, queued: Any) -> None:
            conn.execute(
                "INSERT INTO records VALUES (?, ?, ?, ?)",
                (queued[0].id, kind, time.time(), json.dumps(data, ensure_ascii=False)),
            )

        return self.outbox.enqueue_many([(kind, data, None)], also=also)[0].id

    def day_start(self) -> float:
        """Today's midnight, local time (the site's time zone)."""
        midnight = datetime.now(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight.timestamp()

    def today(self, kind: str) -> list[dict[str, Any]]:
        midnight = datetime.now(self.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        rows = self.outbox.read(
            "SELECT at, data FROM records WHERE kind = ? AND at >= ? ORDER BY at",
            (kind, midnight.timestamp()),
        )
        out = []
        for at, data in rows:
            d = json.loads(data)
            d["time"] = datetime.fromtimestamp(at, self.tz).strftime("%H:%M")
            out.append(d)
        return out
