"""``shian-cloud install-service`` and ``assets``: what the installer puts on the machine."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shared.clikit import Decorator
from shared.units import ensure_user, install_units, render_unit, service_options


def register(main: click.Group, config_option: Decorator, get_config: Callable[..., Any]) -> None:
    @main.command("install-service")
    @config_option
    @service_options
    def install_service(
        config_path: Path | None, dest: Path, user: str, create_user: bool, enable: bool
    ) -> None:
        """Install shian-cloud.service (hardened: `systemd-analyze security` rates it 2.0 or
        below) and shian-broker-reload.path, which reloads Mosquitto when the collector's
        commands change its password or ACL file.

        Example: shian-cloud install-service --config /etc/shian/cloud.toml
        """
        from shared.topics import check_name

        try:
            check_name(user, "user")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--user") from None
        cfg = get_config(config_path)
        click.echo(ensure_user(user, [], create_user))
        config = str((config_path or Path("/etc/shian/cloud.toml")).resolve())
        exe = shutil.which("shian-cloud") or str(Path(sys.executable).parent / "shian-cloud")
        broker_dir = str(cfg.provisioning.broker_dir.resolve())
        units = {
            "shian-cloud.service": render_unit("shian-cloud.service", exe, config, user),
            "shian-broker-reload.path": render_unit(
                "shian-broker-reload.path", broker_dir=broker_dir
            ),
            "shian-broker-reload.service": render_unit("shian-broker-reload.service"),
        }
        install_units(dest, units, ["shian-broker-reload.path", "shian-cloud.service"], enable)

    @main.command("assets")
    @config_option
    def assets(config_path: Path | None) -> None:
        """Install the browser libraries the pages serve (hls.js for live views, uPlot for the
        console's plots) from the npm registry into [web] assets_dir, each checked by its
        sha256; nothing is ever loaded from a CDN.

        Example: shian-cloud assets --config /etc/shian/cloud.toml
        """
        from cloud.webassets import install
        from shared.fetch import FetchError

        try:
            paths = install(get_config(config_path).web.assets_dir)
        except (FetchError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        for path in paths:
            click.echo(f"installed: {path}")
