"""systemd units from the templates in ``systemd/``, with this install's paths filled in."""

from __future__ import annotations

import grp
import os
import pwd
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
    values = {"EXECUTABLE": executable, "CONFIG": config, "USER": user, "GROUP": _group_of(user)}
    values.update({k.upper(): v for k, v in extra.items()})
    for key, value in values.items():
        if "\n" in value:
            raise ValueError(f"{key.lower()} {value!r} would break the unit file")
        text = text.replace(f"@{key}@", value)
    return text


F = TypeVar("F", bound=Callable[..., Any])


def ensure_user(user: str, groups: list[str], create: bool) -> str:
    """The service's user: checked, or made (a system user with no login) when ``create``.
    Returns what was done, for the installer to read."""
    known = [g for g in groups if _group_exists(g)]
    try:
        pwd.getpwnam(user)
    except KeyError:
        pass
    else:
        lacking = [g for g in known if user not in grp.getgrnam(g).gr_mem]
        if not lacking:
            return f"user {user} exists"
        # an existing user is the installer's to change: say what it lacks, change nothing
        return (
            f"user {user} exists, but is not in {', '.join(lacking)}, which the service "
            f"needs: sudo usermod -aG {','.join(lacking)} {user}"
        )
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    cmd += ["--groups", ",".join(known)] if known else []
    cmd.append(user)
    if not create or os.geteuid() != 0 or not shutil.which("useradd"):
        raise click.ClickException(
            f"no user {user!r} on this machine: create it (sudo {' '.join(cmd)}), or run "
            "install-service as root with --create-user"
        )
    subprocess.run(cmd, check=True, capture_output=True)
    return f"user {user} created ({' '.join(cmd)})"


def _group_of(user: str) -> str:
    """The user's own group (Debian's nobody has nogroup), or a group of its name."""
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def service_options(f: F) -> F:
    """``--dest``, ``--user``, ``--create-user`` and ``--enable/--no-enable`` of both
    ``install-service``s."""
    f = click.option(
        "--create-user/--no-create-user",
        default=True,
        show_default=True,
        help="Make the service's user (a system user with no login) when it does not exist.",
    )(f)
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
