"""Who a message is from: the registry's word, never the message's.

A box can be tampered with or its password copied, so what it writes about itself is checked
against its registry entry (``cloud.registry``) before anything is stored: a device the
registry does not know (or has revoked) is ``unknown_device``; an event or status naming
another site is ``site_mismatch``; a kind its role does not make (a kitchen's box selling
tickets) is ``role_mismatch``. Each becomes a dead letter and the rest of the batch is stored.
The box is not told its event was stored, so it keeps it: once the registry is put right, the
next resend is taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cloud.batch import DeadLetter, Snapshot
from cloud.registry import Identity
from shared import topics
from shared.models import Envelope, Status

EVERY_ROLE = frozenset(
    {"device_started", "update", "test", "rectification", "scale_fault", "printer_fault"}
    | {"sensor_minute", "sensor_excursion", "sensor_fault", "disinfection_cycle"}  # any box's
)
ROLE_KINDS: dict[str, frozenset[str]] = {
    "kitchen": EVERY_ROLE
    | {
        "violation",
        "camera_offline",
        "camera_online",
        "camera_tampered",
        "morning_check",
        "disinfection",
        "live_offer",
        "live",
        "purchase",
        "stock_out",
        "stock_expiry",
    },
    "stall": EVERY_ROLE | {"ticket"},
}
"""The event kinds a box of each role makes."""


@dataclass
class Screened:
    events: list[Envelope] = field(default_factory=list)
    statuses: list[Status] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


def event_bytes(e: Envelope) -> bytes:
    """An event as it came (near enough for a dead letter: the model's own JSON)."""
    return e.model_dump_json().encode()


def _refusal(who: Identity | None, device: str, site: str | None) -> str | None:
    """Why ``device`` may not say this of ``site`` (None: no site to check), or None."""
    if who is None:
        return f"unknown_device: {device} is not a registered, active device"
    if site is not None and site != who.site:
        return f"site_mismatch: {device} is registered at {who.site}, not {site}"
    return None


def screen(
    identities: Mapping[str, Identity],
    events: list[Envelope],
    statuses: list[Status],
    snapshots: list[Snapshot],
) -> Screened:
    """Split a batch into what its registered senders may say and dead letters."""
    out = Screened()
    for e in events:
        who = identities.get(e.device)
        reason = _refusal(who, e.device, e.site)
        if reason is None and who is not None and e.kind not in ROLE_KINDS[who.role]:
            reason = f"role_mismatch: a {who.role} box does not send {e.kind} events"
        if reason is None:
            out.events.append(e)
        else:
            out.dead.append(DeadLetter(topics.events(e.device), event_bytes(e), reason))
    for st in statuses:
        reason = _refusal(identities.get(st.device), st.device, st.site)
        if reason is None:
            out.statuses.append(st)
        else:
            body = st.model_dump_json(exclude_none=True).encode()
            out.dead.append(DeadLetter(topics.status(st.device), body, reason))
    for s in snapshots:
        reason = _refusal(identities.get(s.device), s.device, None)
        if reason is None:
            out.snapshots.append(s)
        else:
            out.dead.append(s.refused(reason))
    return out
