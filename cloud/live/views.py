"""What the store says about a site's live views: the cameras its boxes offer (their last
``live_offer``), the regulator's switch and cap, and whether a box and a camera are up.

The public never sees a box or a camera's name: a site's public cameras are its views,
numbered from 1 in a stable order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from pydantic import ValidationError

from cloud.db import Db
from shared.hours import in_window
from shared.kinds import LiveOffer, OfferedCamera


@dataclass(frozen=True)
class View:
    n: int
    device: str
    camera: OfferedCamera
    timezone_offset_h: float

    @property
    def label(self) -> str:
        return self.camera.label

    def in_hours(self, now: float) -> bool:
        if not self.camera.hours:
            return True
        local = datetime.fromtimestamp(now, UTC).astimezone(
            timezone(timedelta(hours=self.timezone_offset_h))
        )
        return any(in_window(w, local) for w in self.camera.hours)


@dataclass(frozen=True)
class SiteLive:
    exists: bool
    off: bool = False
    cap: int | None = None


def site_live(db: Db, site: str) -> SiteLive:
    rows = db.query("SELECT live_off, live_cap FROM sites WHERE site = ?", (site,))
    if not rows:
        return SiteLive(False)
    return SiteLive(True, bool(rows[0]["live_off"]), rows[0]["live_cap"])


def views(db: Db, site: str) -> list[View]:
    """The site's public cameras, from each of its boxes' latest offer (a box's events were
    checked as they came in; one that no longer parses is skipped)."""
    latest: dict[str, tuple[float, str]] = {}
    for r in db.query(  # the newest first (a box sends one at each start: they pile up)
        "SELECT device, data, received FROM events WHERE site = ? AND kind = 'live_offer'"
        " ORDER BY received DESC LIMIT 64",
        (site,),
    ):
        latest.setdefault(r["device"], (r["received"], r["data"]))
    cams: list[tuple[str, OfferedCamera, float]] = []
    for device in sorted(latest):
        try:
            offer = LiveOffer.model_validate(json.loads(latest[device][1]))
        except (ValidationError, ValueError):
            continue
        cams += [(device, c, offer.timezone_offset_h) for c in offer.cameras if c.public]
    return [View(i + 1, d, c, tz) for i, (d, c, tz) in enumerate(cams)]


def device_online(db: Db, device: str) -> bool:
    rows = db.query("SELECT state FROM devices WHERE device = ?", (device,))
    return bool(rows) and rows[0]["state"] == "online"


def camera_online(db: Db, site: str, device: str, camera: str) -> bool:
    """Whether the box's last word on the camera was that it is online (or it said nothing)."""
    for r in db.query(
        "SELECT device, kind, data FROM events WHERE site = ? AND kind IN"
        " ('camera_offline', 'camera_online') ORDER BY received DESC LIMIT 200",
        (site,),
    ):
        if r["device"] != device:
            continue
        if json.loads(r["data"]).get("camera") == camera:
            return bool(r["kind"] == "camera_online")
    return True
