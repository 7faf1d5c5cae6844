"""Live views on demand (docs/live.md): the command the cloud sends a box, and the names that
appear in media-server URLs.

The cloud sends ``shian/v1/dev/{device}/cmd/live`` (QoS 1, not retained) when a viewer opens a
public camera, and again every third of the lease while somebody watches; the box stops a
stream whose lease ran out, or at once on ``stop``. A stream id is random and opaque: it is
what the media server and the viewers' players see, never a device or a camera name.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.kinds import CAMERA_NAME

STREAM_ID = r"^[a-z0-9]{16,32}$"
"""A stream's id: in RTMP and HLS URLs, file names and the live frame topic."""
STREAM_RE = re.compile(STREAM_ID)
MAX_LEASE_S = 600


class LiveCommand(BaseModel):
    """``cmd/live``: start (or keep) or stop sending one camera."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = Field(default=1, description="Version of this message.")
    action: Literal["start", "stop"] = Field(description="start (or renew), or stop.")
    camera: str = Field(pattern=CAMERA_NAME, description="The box's camera.")
    stream: str = Field(pattern=STREAM_ID, description="The stream's id.")
    url: str = Field(
        default="",
        max_length=512,
        description="Where to push the H.264 copy: rtmp://host[:port]/app/{stream}?k=...",
    )
    lease_s: float = Field(
        default=30, gt=0, le=MAX_LEASE_S, description="Stop unless renewed within this."
    )

    @field_validator("url")
    @classmethod
    def _rtmp(cls, url: str) -> str:
        if not url:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("rtmp", "rtmps") or not parts.hostname:
            raise ValueError("url must be rtmp:// or rtmps:// with a host")
        if any(c in url for c in " \t\r\n\x00"):
            raise ValueError("url holds whitespace or a control character")
        return url
