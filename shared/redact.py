"""Credentials out of text: a camera's ``rtsp://admin:pw@host/...`` must never reach a log, an
event, an alert or a group bot, and neither may a password or token in a URL's query.

``redact`` works on any text (a reason from OpenCV or FFmpeg may quote the URL somewhere in a
sentence), so the edge applies it where a URL leaves the camera code and the cloud applies it
again to what a box sends, in case an older or a broken box did not.
"""

from __future__ import annotations

import re

HIDDEN = "***"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,15}://)[^\s/?#]*@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|pass|token|access_token|key|secret|auth|sign)=)[^&#\s]*"
)


def redact(text: str) -> str:
    """``text`` with every URL's user and password and every secret-looking query value
    replaced by ``***``."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(rf"\1{HIDDEN}@", text)
    return _SECRET_PARAM.sub(rf"\1{HIDDEN}", text)
