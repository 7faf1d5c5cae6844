"""``shian-cloud`` commands that register boxes and supervisors with the broker."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shared.clikit import Decorator, json_option
from shared.secretfiles import write_secret


def register(
    main: click.Group,
    config_option: Decorator,
    get_config: Callable[..., Any],
    get_store: Callable[..., Any],
) -> None:
    from cloud.provisioning import ProvisioningError, Registry

    def registry(config_path: Path | None) -> Registry:
        return Registry(get_config(config_path), get_store(config_path, create=True))

    devices = main.commands["devices"]
    assert isinstance(devices, click.Group)

    @devices.command("add")
    @click.argument("device")
    @click.option("--site", required=True, help="The kitchen or stall it serves.")
    @click.option("--district", required=True, help="The supervising district.")
    @click.option("--role", type=click.Choice(["kitchen", "stall"]), required=True)
    @click.option("--market", default="", help="Stall: the market's name (printed on tickets).")
    @click.option("--stall-no", default="", help="Stall: its number.")
    @click.option("--retailer", default="", help="Stall: the vendor's name.")
    @click.option(
        "--rotate-key",
        is_flag=True,
        help="Stall: give it a new ticket key (registering again keeps the key it has; "
        "tickets signed with an earlier key stay genuine).",
    )
    @config_option
    def devices_add(
        device: str,
        site: str,
        district: str,
        role: str,
        market: str,
        stall_no: str,
        retailer: str,
        rotate_key: bool,
        config_path: Path | None,
    ) -> None:
        """Register a box: broker credentials, its ticket key (a stall), and the bundle the
        installer takes to it (shian-edge provision BUNDLE).

        Example: shian-cloud devices add k17 --site canteen-017 --district xianan --role kitchen
        """
        stall = {"market": market, "stall_no": stall_no, "retailer": retailer}
        try:
            bundle = registry(config_path).add_device(
                device, site, district, role, stall if role == "stall" else None, rotate_key
            )
        except ProvisioningError as exc:
            raise click.ClickException(str(exc)) from None
        key = f"; ticket key {bundle['ticket_key_id'] or '(first)'}" if role == "stall" else ""
        click.echo(
            f"{device}: registered{key}; bundle {bundle['path']} (mode 0600, holds its "
            "password: carry it to the box, then delete it)"
        )

    @devices.command("import")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @config_option
    def devices_import(csv_file: Path, config_path: Path | None) -> None:
        """Register many boxes from a CSV file (columns device, site, district, role, and for
        stalls market, stall_no, retailer); nothing is written if any row is wrong. Writes a
        bundle for each.

        Example: shian-cloud devices import boxes.csv
        """
        import csv
        import io

        try:
            text = csv_file.read_text(encoding="utf-8-sig")
            rows = [
                {k: (v or "").strip() for k, v in r.items() if isinstance(k, str)}
                for r in csv.DictReader(io.StringIO(text, newline=""))
            ]
            bundles = registry(config_path).add_devices(rows)
        except (ProvisioningError, UnicodeDecodeError, csv.Error) as exc:
            raise click.ClickException(f"{csv_file}: {exc}") from None
        folder = Path(bundles[0]["path"]).parent if bundles else "-"
        click.echo(f"{len(bundles)} boxes registered; bundles in {folder} (mode 0600)")

    @devices.command("revoke")
    @click.argument("device")
    @config_option
    def devices_revoke(device: str, config_path: Path | None) -> None:
        """Revoke a box (or a supervisor): the broker refuses it from now on.

        Example: shian-cloud devices revoke kitchen-17
        """
        try:
            registry(config_path).revoke(device)
        except ProvisioningError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        click.echo(f"{device}: revoked")

    @devices.command("registry")
    @config_option
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def devices_registry(config_path: Path | None, as_json: bool) -> None:
        """List every broker user: boxes, supervisors, the collector, and what is revoked.

        Example: shian-cloud devices registry --json
        """
        from shared.clikit import print_rows

        print_rows(
            registry(config_path).list(),
            ["name", "kind", "role", "site", "district", "revoked"],
            as_json,
        )

    @main.group()
    def broker() -> None:
        """The broker's password and ACL files.

        Example: shian-cloud broker init
        """

    @broker.command("init")
    @config_option
    @json_option
    def broker_init(config_path: Path | None, as_json: bool) -> None:
        """Create the collector's own broker user and write the ACL. The password goes into
        the file ``[mqtt] password_file`` names (0600), else it is printed once.

        Example: shian-cloud broker init --config /etc/shian/cloud.toml
        """
        cfg = get_config(config_path)
        try:
            password = registry(config_path).collector_user()
        except ProvisioningError as exc:
            raise click.ClickException(str(exc)) from None
        user = cfg.broker().username or "shian-collector"
        target = cfg.mqtt.password_file if cfg.mqtt is not None else None
        if target is not None:
            write_secret(target, password + "\n")
        if as_json:
            out = {"user": user, "password_file": str(target) if target else None}
            click.echo(json.dumps(out if target else {**out, "password": password}))
        elif target is not None:
            click.echo(f"broker user {user}: its password is in {target} (0600)")
        else:
            click.echo(f"broker user {user}, password (shown once; no [mqtt] password_file):")
            click.echo(password)

    @broker.command("config")
    @config_option
    @click.option(
        "--dest",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write it here (e.g. /etc/mosquitto/conf.d/shian.conf) instead of printing it.",
    )
    def broker_config(config_path: Path | None, dest: Path | None) -> None:
        """Mosquitto's config for this collector: no anonymous access, the password and ACL
        files of broker_dir, TLS from <data_dir>/tls (broker certs), the collector's own
        listener on 127.0.0.1.

        Example: shian-cloud broker config --dest /etc/mosquitto/conf.d/shian.conf
        """
        from shared.units import render_unit

        cfg = get_config(config_path)
        text = render_unit(
            "mosquitto/shian.conf",
            broker_dir=str(cfg.provisioning.broker_dir),
            tls_dir=str(cfg.data_dir / "tls"),
        )
        if dest is None:
            click.echo(text, nl=False)
            return
        dest.write_text(text)
        click.echo(f"{dest} written; next: systemctl restart mosquitto")

    @broker.command("certs")
    @config_option
    @click.option(
        "--host",
        "hosts",
        multiple=True,
        required=True,
        help="A name or address the boxes reach the broker by (repeat for more).",
    )
    @click.option(
        "--dir",
        "folder",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where the CA and the certificate go (default: <data_dir>/tls).",
    )
    @click.option("--days", default=825, show_default=True, help="The certificate's validity.")
    def broker_certs(
        config_path: Path | None, hosts: tuple[str, ...], folder: Path | None, days: int
    ) -> None:
        """Make the city's CA (once; kept after) and the broker's server certificate for its
        names: ca.pem goes into every bundle, server.pem and server.key to Mosquitto.

        Example: shian-cloud broker certs --host broker.example.gov.cn --host 10.0.0.5
        """
        from cloud.broker_certs import make_broker_certs

        cfg = get_config(config_path)
        folder = folder or cfg.data_dir / "tls"
        try:
            made = make_broker_certs(folder, list(hosts), days, cfg.provisioning.broker_group)
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        for what, path in (("CA", made.ca), ("certificate", made.server_cert)):
            click.echo(f"{what}: {path}")
        click.echo(f"key: {made.server_key} (0640, group {cfg.provisioning.broker_group})")


def add_supervisor_credentials(
    cfg: Any, store: Any, name: str, district: str, role: str = "supervisor", firm: str = ""
) -> str:
    from cloud.provisioning import Registry

    return Registry(cfg, store).add_supervisor(name, district, role, firm)
