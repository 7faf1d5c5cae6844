"""Pieces both command lines share: option decorators, tables, JSON output, logging, signals."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel

from shared.config import ConfigError, load

F = TypeVar("F", bound=Callable[..., Any])
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
"""A shared option (``config_option``) as the command modules' ``register`` takes it."""
M = TypeVar("M", bound=BaseModel)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def limit_option(f: F) -> F:
    return click.option(
        "--limit", default=50, show_default=True, type=click.IntRange(1), help="Most rows shown."
    )(f)


def log_option(f: F) -> F:
    return click.option(
        "--log-level",
        default="INFO",
        show_default=True,
        envvar="SHIAN_LOG_LEVEL",
        type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
        help="How much to log (stderr).",
    )(f)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def load_config(path: Path, model: type[M]) -> M:
    """Load a config or exit with status 2 and one line per bad field."""
    try:
        return load(path, model)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"config error: {line}", err=True)
        sys.exit(2)


def print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(list(rows), ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any, width: int = 60) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def on_stop_signals(handler: Callable[[], None]) -> None:
    """Call ``handler`` on SIGTERM (systemd stop) and SIGINT (Ctrl-C)."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _s, _f: handler())


def run_for(seconds: float, poll_s: float = 0.2) -> None:
    """Return after ``seconds`` (0: never) or on Ctrl-C, for commands that watch a live
    device in background threads."""
    end = time.monotonic() + seconds
    try:
        while seconds <= 0 or time.monotonic() < end:
            time.sleep(poll_s)
    except KeyboardInterrupt:
        pass
