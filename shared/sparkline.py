"""A small plot of a day of readings as inline SVG, drawn on the server (the box's hall screen
and the console's site page): numbers only go into it, so it is safe in any page."""

from __future__ import annotations

import math

WIDTH, HEIGHT = 288, 56


def sparkline(
    points: list[tuple[float, float]],
    day_start: float,
    low: float | None = None,
    high: float | None = None,
    label: str = "",
) -> str:
    """``points`` are (time, value) within the day from ``day_start``; ``low`` and ``high``
    draw the allowed range as dashed lines. An empty day is an empty frame."""
    points = [(t, v) for t, v in points if math.isfinite(t) and -1000 <= v <= 1000]
    values = [v for _, v in points]
    marks = [m for m in (low, high) if m is not None and -1000 <= m <= 1000]
    lo = min([*values, *marks], default=0.0) - 1
    hi = max([*values, *marks], default=1.0) + 1

    def x(t: float) -> float:
        return round(min(max((t - day_start) / 86400, 0.0), 1.0) * WIDTH, 1)

    def y(v: float) -> float:
        return round(HEIGHT - (v - lo) / (hi - lo) * HEIGHT, 1)

    shown = [(x(t), y(v)) for t, v in points]
    line = " ".join(f"{a},{b}" for a, b in shown)
    last = ""
    if shown:  # now: a dot, so a day's first reading shows too
        last = f"<circle cx='{shown[-1][0]}' cy='{shown[-1][1]}' r='2.5' fill='#1e3a5f'/>"
    rules = "".join(
        f"<line x1='0' x2='{WIDTH}' y1='{y(m)}' y2='{y(m)}' stroke='#c53030'"
        " stroke-dasharray='4 3' stroke-width='1'/>"
        for m in marks
    )
    name = "".join(c for c in label if c.isalnum() or c in " .-_")[:40]
    return (
        f"<svg class='spark' viewBox='0 0 {WIDTH} {HEIGHT}' width='{WIDTH}' height='{HEIGHT}'"
        f" role='img' aria-label='{name}'><rect width='{WIDTH}' height='{HEIGHT}' fill='#f8fafc'/>"
        f"{rules}<polyline points='{line}' fill='none' stroke='#1e3a5f' stroke-width='1.5'/>"
        f"{last}</svg>"
    )
