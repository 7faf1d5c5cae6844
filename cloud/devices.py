"""Devices as the collector knows them: last seen, statuses in the order they happened (never by
the box's clock), the clock's drift, and the sequence ranges that show gaps."""

from __future__ import annotations

import json
from typing import Any

from cloud.db import Conn, Db
from cloud.ranges import holes, select_in
from shared.models import Status


def _older(st: Status, prev: Status | None, ended: list[str], prev_age_s: float) -> bool:
    """Whether ``st`` happened before the status already stored: another collector took a
    later one first (shared subscriptions do not keep a box's messages in order), or the
    broker sent the will of a session the box has already replaced. Never by the box's clock,
    which may have been stepped: within one agent run by (session, the will last, number); a
    run already replaced is older. Between runs, by the outbox sequence (it does not go back):
    lower is older, unless what is stored is older than ``RESET_AFTER_S`` (a box whose
    database was wiped starts again from 1); on a tie (a full disk refused device_started)
    the later arrival wins, except a will, which never replaces another run's status (if the
    box is really gone, silence says so). A status that does not say (an older agent) is
    taken as it comes."""
    if st.run is None or prev is None:
        return False
    if st.run in ended:
        return True
    if prev.run is None:
        return False
    if prev.run == st.run:
        return _place(st) < _place(prev)
    seq, before = st.last_seq or 0, prev.last_seq or 0
    if seq == before:
        return st.reason == "will"
    return seq < before and prev_age_s < RESET_AFTER_S


def _replaced_run(st: Status, prev: Status | None) -> str | None:
    """The run that the applied ``st`` ends for good (its late will is then stale): not on a
    tie of sequences, where the order is only the order of arrival."""
    if prev is None or prev.run is None or st.run in (None, prev.run):
        return None
    return prev.run if (st.last_seq or 0) != (prev.last_seq or 0) else None


def _place(st: Status) -> tuple[int, int, int]:
    return (st.sess or 0, 1 if st.reason == "will" else 0, st.n or 0)


RUNS_KEPT = 8
"""Replaced agent runs remembered per box (a late will of any of them is dropped)."""
RESET_AFTER_S = 600.0
"""A stored status older than this no longer outranks a new run with a lower sequence."""


def _parse(stored: str | None) -> Status | None:
    try:
        return Status.model_validate_json(stored) if stored else None
    except ValueError:
        return None


def _skew(st: Status, now: float) -> float | None:
    """How far ahead of the collector the box's clock is, by a status written just now (a will
    carries its session's start, so it says nothing of the clock)."""
    if st.reason == "will":
        return None
    return round(st.ts.timestamp() - now, 3)


class Devices:
    def __init__(self, db: Db) -> None:
        self.db = db

    def statuses(self, conn: Conn, statuses: list[Status], now: float) -> list[Status]:
        """Store the statuses; return those the alert engine must see (a change of state, or
        outbox figures). The same message again (another collector's copy) is skipped."""
        if not statuses:
            return []
        before = {
            r[0]: [r[1], r[2], r[3], json.loads(r[4] or "[]"), r[5]]
            for r in select_in(
                conn,
                "SELECT device, state, state_reason, last_status, ended_runs, status_received"
                " FROM devices",
                "device",
                [st.device for st in statuses],
            )
        }
        changed: list[Status] = []
        rows: dict[str, tuple[Any, ...]] = {}
        for st in statuses:
            text = st.model_dump_json(exclude_none=True)
            old = before.get(st.device)
            prev = _parse(old[2]) if old is not None else None
            ended = old[3] if old is not None else []
            age = now - (old[4] or 0.0) if old is not None else 0.0
            if old is not None and (old[2] == text or _older(st, prev, ended, age)):
                continue  # the same message again, or one older than what is stored
            if old is None or (old[0], old[1]) != (st.state, st.reason) or st.outbox is not None:
                changed.append(st)
            replaced = _replaced_run(st, prev)
            if replaced is not None:
                ended = [*ended, replaced][-RUNS_KEPT:]
            before[st.device] = [st.state, st.reason, text, ended, now]
            skew = _skew(st, now)
            rows[st.device] = (
                text,
                st.reason,
                st.state,
                now,
                st.state,
                json.dumps(ended),
                skew,
                now,
            )
        self.touch(conn, [(st.device, st.site) for st in statuses], now)
        conn.executemany(
            "UPDATE devices SET last_status = ?, state_reason = ?,"
            " state_changed = CASE WHEN state = ? THEN state_changed ELSE ? END,"
            " state = ?, ended_runs = ?, clock_skew_s = coalesce(?, clock_skew_s),"
            " status_received = ? WHERE device = ?",
            [(*r, device) for device, r in rows.items()],
        )
        return changed

    @staticmethod
    def touch(conn: Conn, device_sites: list[tuple[str, str]], now: float) -> None:
        conn.executemany(
            "INSERT INTO devices (device, site, last_seen) VALUES (?,?,?) "
            "ON CONFLICT(device) DO UPDATE SET site = excluded.site,"
            " last_seen = excluded.last_seen",
            [(device, site, now) for device, site in dict(device_sites).items()],
        )

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM devices ORDER BY device")
        ranges: dict[str, list[tuple[int, int]]] = {}
        for r in self.db.query("SELECT device, lo, hi FROM seq_ranges ORDER BY device, lo"):
            ranges.setdefault(r["device"], []).append((r["lo"], r["hi"]))
        for r in rows:
            gaps = holes(ranges.get(r["device"], []))
            r["gaps"] = [list(g) for g in gaps]
            r["missing"] = sum(hi - lo + 1 for lo, hi in gaps)
            r["last_status"] = json.loads(r["last_status"]) if r["last_status"] else None
        return rows
