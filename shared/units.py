"""systemd units from the templates in ``systemd/``, with this install's paths filled in."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from shared.assets import units_dir


def render_unit(
    name: str, executable: str = "", config: str = "", user: str = "shian", **extra: str
) -> str:
    """The unit ``name`` with ``@EXECUTABLE@``, ``@CONFIG@``, ``@USER@`` and any ``@KEY@`` of
    ``extra`` (as ``key=value``) replaced."""
    try:
        text = (units_dir() / name).read_text()
    except FileNotFoundError:
        raise click.ClickException(
            f"no unit template {name} in {units_dir()}: reinstall the shian package"
        ) from None
    values = {"EXECUTABLE": executable, "CONFIG": config, "USER": user}
    values.update({k.upper(): v for k, v in extra.items()})
    for key, value in values.items():
        if "\n" in value:
            raise ValueError(f"{key.lower()} {value!r} would break the unit file")
        text = text.replace(f"@{key}@", value)
    return text


F = TypeVar("F", bound=Callable[..., Any])


def service_options(f: F) -> F:
    """``--dest``, ``--user`` and ``--enable/--no-enable`` of both ``install-service``s."""
    f = click.option(
        "--enable/--no-enable",
        default=True,
        show_default=True,
        help="systemctl enable --now (when systemd runs this machine).",
    )(f)
    f = click.option("--user", default="shian", show_default=True, help="The service's user.")(f)
    return click.option(
        "--dest",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/etc/systemd/system"),
        show_default=True,
        help="Where the units go.",
    )(f)


def install_units(dest: Path, units: dict[str, str], start: list[str], enable: bool) -> None:
    """Write ``units`` (name -> text) into ``dest``; enable and start ``start`` when asked and
    systemd runs this machine, else say how."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, text in units.items():
        (dest / name).write_text(text)
        click.echo(f"{dest / name} written")
    if enable and shutil.which("systemctl") and Path("/run/systemd/system").exists():
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        for name in start:
            subprocess.run(["systemctl", "enable", "--now", name], check=True)
        click.echo(f"{' and '.join(start)} enabled and started")
    else:
        click.echo(f"next: systemctl daemon-reload && systemctl enable --now {' '.join(start)}")
