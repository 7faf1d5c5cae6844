"""Each device's received sequence numbers, kept as merged ranges; the holes between them are
the gaps. Pure functions, and their table (``seq_ranges``) read and written set-wise."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from typing import Any

from cloud.db import Conn

Ranges = list[tuple[int, int]]
"""A device's received seqs as sorted inclusive ranges ``(lo, hi)``."""


def merge_ranges(ranges: list[tuple[int, int]], seqs: list[int]) -> list[tuple[int, int]]:
    """Merge sequence numbers into sorted, non-overlapping, non-adjacent ranges."""
    runs: list[tuple[int, int]] = []  # a box's seqs mostly come in runs: a tuple per run
    for s in sorted(seqs):
        if runs and s <= runs[-1][1] + 1:
            if s > runs[-1][1]:
                runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    items = sorted(ranges + runs)
    out: list[tuple[int, int]] = []
    for lo, hi in items:
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def holes(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Missing sequence numbers (inclusive ranges), from 1 to the highest received."""
    out = []
    prev = 0
    for lo, hi in ranges:
        if lo > prev + 1:
            out.append((prev + 1, lo - 1))
        prev = hi
    return out


def select_in(
    conn: Conn, sql: str, column: str, keys: list[str], params: Sequence[Any] = ()
) -> list[Any]:
    """``sql WHERE column IN (keys)``, in chunks (SQLite limits the parameters); ``sql`` may
    end in ``WHERE ... AND`` to add its own condition, with its ``params`` (a parameter, not a
    literal: the same statement each time, prepared once)."""
    out: list[Any] = []
    unique = sorted(set(keys))
    if conn.dialect == "postgresql":  # one array parameter: one statement psycopg prepares
        where = " " if sql.endswith(" AND") else " WHERE "
        if not unique:
            return []
        return conn.execute(f"{sql}{where}{column} = ANY(?)", [*params, unique]).fetchall()
    for i in range(0, len(unique), 500):
        chunk = unique[i : i + 500]
        marks = ",".join("?" * len(chunk))
        where = " " if sql.endswith(" AND") else " WHERE "
        out.extend(conn.execute(f"{sql}{where}{column} IN ({marks})", [*params, *chunk]).fetchall())
    return out


def read(conn: Conn, devices: Iterable[str]) -> dict[str, Ranges]:
    """Each of ``devices``' ranges, sorted (an empty list for a device never heard)."""
    out: dict[str, Ranges] = {d: [] for d in devices}
    for device, lo, hi in select_in(
        conn, "SELECT device, lo, hi FROM seq_ranges", "device", list(out)
    ):
        out[device].append((lo, hi))
    for got in out.values():
        got.sort()
    return out


def covers(ranges: Ranges, seq: int) -> bool:
    """Whether sorted ``ranges`` hold ``seq``."""
    i = bisect.bisect_right(ranges, (seq, math.inf)) - 1
    return i >= 0 and ranges[i][1] >= seq


def add_seqs(conn: Conn, seqs: dict[str, list[int]], old: dict[str, Ranges]) -> dict[str, Ranges]:
    """Add each device's seqs to its ranges (``old``, as ``read`` gives them in this
    transaction); return the holes that did not exist before (only those past what was
    received already: a late arrival fills, not opens, a gap)."""
    gone, added, gaps = [], [], {}
    for device, got in seqs.items():
        before = old[device]
        after = merge_ranges(before, got)
        if after == before:
            continue
        starts = {lo for lo, _ in after}  # a range grown at its top keeps its row
        gone += [(device, lo) for lo, hi in set(before) - set(after) if lo not in starts]
        added += [(device, lo, hi) for lo, hi in set(after) - set(before)]
        had = set(holes(before))
        top = before[-1][1] if before else 0
        new = [h for h in holes(after) if h not in had and h[1] > top]
        if new:
            gaps[device] = new
    if gone:
        conn.executemany("DELETE FROM seq_ranges WHERE device = ? AND lo = ?", gone)
    conn.executemany(
        "INSERT INTO seq_ranges (device, lo, hi) VALUES (?,?,?)"
        " ON CONFLICT (device, lo) DO UPDATE SET hi = excluded.hi",
        added,
    )
    return gaps
