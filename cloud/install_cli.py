"""``shian-cloud install-service``: the collector's systemd units, as the installer puts them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def register(main: click.Group, config_option: Decorator, get_config: Callable[..., Any]) -> None:
    @main.command("install-service")
    @config_option
    @click.option(
        "--dest",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/etc/systemd/system"),
        show_default=True,
        help="Where the units go.",
    )
    @click.option("--user", default="shian", show_default=True, help="The service's user.")
    @click.option(
        "--enable/--no-enable",
        default=True,
        show_default=True,
        help="Enable and start them (when systemd runs this machine).",
    )
    def install_service(config_path: Path | None, dest: Path, user: str, enable: bool) -> None:
        """Install shian-cloud.service (hardened: `systemd-analyze security` rates it 2.0 or
        below) and shian-broker-reload.path, which reloads Mosquitto when the collector's
        commands change its password or ACL file.

        Example: shian-cloud install-service --config /etc/shian/cloud.toml
        """
        from shared.topics import check_name
        from shared.units import render_unit

        try:
            check_name(user, "user")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--user") from None
        cfg = get_config(config_path)
        config = str((config_path or Path("/etc/shian/cloud.toml")).resolve())
        exe = shutil.which("shian-cloud") or str(Path(sys.executable).parent / "shian-cloud")
        broker_dir = str(cfg.provisioning.broker_dir.resolve())
        dest.mkdir(parents=True, exist_ok=True)
        units = {
            "shian-cloud.service": render_unit("shian-cloud.service", exe, config, user),
            "shian-broker-reload.path": render_unit(
                "shian-broker-reload.path", broker_dir=broker_dir
            ),
            "shian-broker-reload.service": render_unit("shian-broker-reload.service"),
        }
        for name, text in units.items():
            (dest / name).write_text(text)
            click.echo(f"{dest / name} written")
        if enable and shutil.which("systemctl") and Path("/run/systemd/system").exists():
            subprocess.run(["systemctl", "daemon-reload"], check=True)
            for name in ("shian-broker-reload.path", "shian-cloud.service"):
                subprocess.run(["systemctl", "enable", "--now", name], check=True)
            click.echo("shian-cloud.service and shian-broker-reload.path enabled and started")
        else:
            click.echo(
                "next: systemctl daemon-reload && systemctl enable --now "
                "shian-broker-reload.path shian-cloud.service"
            )
