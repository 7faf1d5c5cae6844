"""The config the cloud pushes, laid over the installer's.

The installer's ``edge.toml`` (in ``/etc/shian``, read-only to the service) is never
rewritten by an update; pushed changes go into ``<data_dir>/fleet.toml``, whose tables are
merged over it key by key (a list, such as ``kitchen.rules``, is replaced whole). Rolling
back restores the previous ``fleet.toml``. A box's identity (device, site, data directory)
cannot be changed this way.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from edge.config import EdgeConfig
from edge.updates.state import UpdateState
from shared.config import ConfigError, load, validate

IDENTITY = ("device", "site", "data_dir")


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``patch`` over ``base``: tables merged key by key, everything else replaced."""
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_edge(path: Path) -> EdgeConfig:
    """The box's config as the agent runs it: the installer's, with the fleet's over it."""
    base = load(path, EdgeConfig)
    state = UpdateState(base.data_dir)
    text = state.overlay_text()
    if text is None:
        return base
    try:
        pushed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{state.overlay}: not valid TOML: {exc}"]) from None
    raw = merge(tomllib.loads(path.read_text(encoding="utf-8")), pushed)
    return validate(raw, EdgeConfig, source=f"{path} with {state.overlay}")


def patched(path: Path, overlay: str | None, patch: dict[str, Any]) -> str:
    """The new ``fleet.toml`` for ``patch``, checked against the whole config it makes;
    raises ``ValueError`` naming what is wrong."""
    if bad := [k for k in IDENTITY if k in patch]:
        raise ValueError(f"an update may not change {', '.join(bad)}")
    new = merge(tomllib.loads(overlay or ""), patch)
    text = tomli_w.dumps(new)
    raw = merge(tomllib.loads(path.read_text(encoding="utf-8")), new)
    try:
        validate(raw, EdgeConfig, source="the pushed config")
    except ConfigError as exc:
        raise ValueError("; ".join(exc.problems)) from None
    return text


def load_or_exit(path: Path) -> EdgeConfig:
    """For the commands: the config as the agent runs it, or exit 2 with one line per problem
    (the installer's file checked first, so its own lines are named)."""
    import sys

    import click

    from shared.clikit import load_config

    load_config(path, EdgeConfig)
    try:
        return load_edge(path)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"config error: {line}", err=True)
        sys.exit(2)
