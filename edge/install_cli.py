"""``shian-edge`` commands for installers: provision, doctor, install-service."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import click

from shared.clikit import Decorator, json_option, print_rows
from shared.redact import redact
from shared.units import service_options


def register(main: click.Group, config_option: Decorator) -> None:
    @main.command()
    @click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option(
        "--dir",
        "conf_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/etc/shian"),
        show_default=True,
        help="Where the config goes.",
    )
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("/var/lib/shian"),
        show_default=True,
        help="The box's state.",
    )
    @click.option(
        "--box",
        default="pi5",
        show_default=True,
        help="Box model (firmware_profiles/boxes): pi4, pi5, cm4.",
    )
    @click.option("--camera-template", help="Camera URL template: hikvision, dahua, ...")
    @click.option("--camera-host", default="", help="Camera or NVR address.")
    @click.option("--camera-user", default="admin", show_default=True)
    @click.option(
        "--camera-password",
        default="",
        envvar="SHIAN_CAMERA_PASSWORD",
        help="Also $SHIAN_CAMERA_PASSWORD.",
    )
    @click.option("--channels", default="", help="Camera channels, e.g. 1-9 or 1,3,5.")
    @click.option("--model", default="ssd_oidv4", show_default=True, help="Kitchen model.")
    @click.option("--scale-port", default="", help="Stall: the scale's port.")
    @click.option("--scale-profile", default="", help="Stall: the scale's profile.")
    @click.option(
        "--printer",
        default="dummy",
        show_default=True,
        help="Stall: network:HOST, serial:DEV, usb:VID:PID, file:PATH.",
    )
    @click.option(
        "--owner",
        default="",
        help="The service's user (shian): the config, its secrets and the data directory "
        "become its own, so the agent can read them.",
    )
    def provision(
        bundle: Path,
        conf_dir: Path,
        data_dir: Path,
        box: str,
        camera_template: str | None,
        camera_host: str,
        camera_user: str,
        camera_password: str,
        channels: str,
        model: str,
        scale_port: str,
        scale_profile: str,
        printer: str,
        owner: str,
    ) -> None:
        """Set this box up from its bundle (shian-cloud devices add): the config, mode 0600,
        with the secrets in files of their own beside it.

        Provisioning again keeps the config it replaces as a dated backup and shows what
        changed.

        Example: shian-edge provision k17.json --owner shian --camera-template dahua
        """
        from edge.provision import provision as do_provision

        try:
            done = do_provision(
                bundle,
                conf_dir,
                data_dir,
                box,
                camera_template,
                camera_host,
                camera_user,
                camera_password,
                channels,
                model,
                scale_port,
                scale_profile,
                printer,
                owner,
            )
        except (ValueError, KeyError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        path = done.path
        if done.backup is not None:
            click.echo(f"{path} changed; the one it replaces is kept as {done.backup}:")
            for line in done.diff:
                click.echo(f"  {redact(line)}")  # a camera URL's password stays off screen
        click.echo(f"{path} written; next: shian-edge doctor --config {path}")
        if not owner and os.geteuid() == 0:
            click.echo(
                "warning: the files are root's; give --owner shian so that the service's "
                "user can read them",
                err=True,
            )
        click.echo(
            f"{bundle} holds this box's broker password (and a stall's ticket key), now copied "
            "into 0600 files beside the config: delete the bundle here and on the cloud side.",
            err=True,
        )

    @main.command()
    @config_option
    @json_option
    @click.option("--print", "print_ticket", is_flag=True, help="Stall: print a test ticket.")
    def doctor(config_path: Path, as_json: bool, print_ticket: bool) -> None:
        """Check every part of the box: clock, disk, broker (TLS, own topic, refused on
        another's), model, cameras, scale, printer. Exit 1 if any check fails.

        Example: shian-edge doctor --config /etc/shian/edge.toml
        """
        from edge.doctor import run
        from edge.updates.overlay import load_or_exit

        cfg = load_or_exit(config_path)  # as the agent runs it
        checks = run(cfg, lambda what: click.echo(f"checking {what} ...", err=True), print_ticket)
        rows = [c.as_json() for c in checks]
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        else:
            for r in rows:
                r["result"] = "PASS" if r["ok"] else "FAIL"
            print_rows(rows, ["name", "result", "detail", "hint"], False)
        sys.exit(0 if all(c.ok for c in checks) else 1)

    @main.command("install-service")
    @config_option
    @service_options
    def install_service(
        config_path: Path, dest: Path, user: str, create_user: bool, enable: bool
    ) -> None:
        """Install shian-edge.service (Type=notify, watchdog, hardening: `systemd-analyze
        security` rates it 2.0 or below) for this config.

        Example: shian-edge install-service --config /etc/shian/edge.toml
        """
        from shared.units import ensure_user, install_units, render_unit

        # serial ports (scale), cameras and USB printers
        click.echo(ensure_user(user, ["dialout", "video", "lp"], create_user))
        exe = shutil.which("shian-edge") or str(Path(sys.executable).parent / "shian-edge")
        unit = render_unit("shian-edge.service", exe, str(config_path.resolve()), user)
        install_units(dest, {"shian-edge.service": unit}, ["shian-edge.service"], enable)
