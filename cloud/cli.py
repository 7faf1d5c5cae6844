"""``shian-cloud``: the regulator's command line, a thin layer over the collector and store."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import click

from cloud.alerts.cli import register as register_alert_commands
from cloud.cluster_cli import register as register_cluster_commands
from cloud.config import DEFAULT_PATH, CloudConfig
from cloud.devices_cli import register as register_device_commands
from cloud.fleet.cli import register as register_fleet_commands
from cloud.install_cli import register as register_install_commands
from cloud.ledger_cli import register as register_ledger_commands
from cloud.live.cli import register as register_live_commands
from cloud.patrol.cli import register as register_patrol_commands
from cloud.sites_cli import register as register_site_commands
from shared.clikit import json_option, limit_option, load_config, log_option, print_rows


def config_option(f: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        envvar="SHIAN_CLOUD_CONFIG",
        help=f"Collector config (TOML); also $SHIAN_CLOUD_CONFIG. Without one: {DEFAULT_PATH} "
        "if it exists, else the embedded defaults (embedded broker, ./shian-cloud.db).",
    )(f)


def _config(path: Path | None) -> CloudConfig:
    if path is None:
        if not DEFAULT_PATH.exists():
            return CloudConfig()
        path = DEFAULT_PATH
    cfg = load_config(path, CloudConfig)
    if cfg.mqtt is not None:  # a relative broker file is the config file's neighbour
        for name in ("ca_file", "cert_file", "key_file", "password_file"):
            value = getattr(cfg.mqtt, name)
            if value is not None and not value.is_absolute():
                setattr(cfg.mqtt, name, path.parent / value)
    return cfg


def _store(path: Path | None, create: bool = False) -> Any:
    from cloud.alerts.engine import AlertEngine
    from cloud.fleet.rollouts import Rollouts
    from cloud.store import Store

    cfg = _config(path)
    if not create and not cfg.store.url and not cfg.store.path.exists():
        click.echo(f"error: no database at {cfg.store.path} (has the collector run?)", err=True)
        sys.exit(1)
    web = f"http://{cfg.web.host}:{cfg.web.port}" if cfg.web.port else ""
    return Store(
        cfg.store.target(),
        cfg.store.snapshots_dir,
        engine=AlertEngine(cfg.alerts, web),
        pool_size=cfg.store.pool_size,
        retention=cfg.evidence,
        fleet=Rollouts(cfg),
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shian")
def main() -> None:
    """Shian cloud collector: stores every device's events exactly once, tracks devices.

    Example: shian-cloud run --config /etc/shian/cloud.toml
    """


@main.command()
@config_option
@log_option
def run(config_path: Path | None, log_level: str) -> None:
    """Run the collector (and the embedded broker when no [mqtt] broker is configured).

    Example: shian-cloud run --config /etc/shian/cloud.toml
    """
    from cloud.service import CloudService
    from shared.clikit import on_stop_signals, setup_logging

    setup_logging(log_level)
    service = CloudService(_config(config_path))
    on_stop_signals(service.request_stop)
    sys.exit(service.run_forever())


@main.group()
def events() -> None:
    """Stored events.

    Example: shian-cloud events list --device kitchen-1 --json
    """


@events.command("list")
@config_option
@click.option("--device", help="Only this device.")
@click.option("--kind", help="Only this kind.")
@limit_option
@json_option
def events_list(
    config_path: Path | None, device: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """List the newest stored events.

    Example: shian-cloud events list --kind test --limit 20
    """
    rows = _store(config_path).events.list(device=device, kind=kind, limit=limit)
    print_rows(rows, ["device", "seq", "kind", "ts", "data"], as_json)


@main.group()
def devices() -> None:
    """Devices seen by the collector.

    Example: shian-cloud devices list
    """


@devices.command("list")
@config_option
@json_option
def devices_list(config_path: Path | None, as_json: bool) -> None:
    """List devices: online state, events, duplicates absorbed, sequence gaps, outbox depth.

    Example: shian-cloud devices list --json
    """
    rows = _store(config_path).devices.list()
    for r in rows:
        outbox = (r.get("last_status") or {}).get("outbox") or {}
        r["outbox_depth"] = outbox.get("depth")
    print_rows(
        rows,
        ["device", "site", "state", "events", "duplicates", "max_seq", "missing", "outbox_depth"],
        as_json,
    )


@main.group()
def deadletters() -> None:
    """Messages that could not be accepted, with the reason.

    Example: shian-cloud deadletters list --json
    """


@deadletters.command("list")
@config_option
@limit_option
@json_option
def deadletters_list(config_path: Path | None, limit: int, as_json: bool) -> None:
    """List dead letters, newest first (payload as text, or base64 when not UTF-8).

    Example: shian-cloud deadletters list --limit 10
    """
    rows = _store(config_path).dead.list(limit)
    for r in rows:
        raw: bytes = r.pop("payload")
        try:
            r["payload"] = raw.decode()
        except UnicodeDecodeError:
            r["payload_base64"] = base64.b64encode(raw).decode()
    print_rows(rows, ["id", "topic", "reason", "payload"], as_json)


@main.group()
def catalog() -> None:
    """Stall catalogs.

    Example: shian-cloud catalog push stall-7 products.csv
    """


@catalog.command("push")
@click.argument("device")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
def catalog_push(device: str, csv_file: Path, config_path: Path | None) -> None:
    """Send a stall its catalog (products, batches, inspections) as a retained command; the
    box takes it now or when it next connects.

    Example: shian-cloud catalog push stall-7 products.csv --config /etc/shian/cloud.toml
    """
    import time

    from cloud.alerts.cli import connect_client
    from shared import SCHEMA_VERSION, topics
    from shared.catalog import CatalogError, CatalogMessage, parse_csv

    try:
        products = parse_csv(csv_file.read_text(encoding="utf-8-sig"))
        topic = topics.command(device, "catalog")
    except (CatalogError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    msg = CatalogMessage(
        v=SCHEMA_VERSION, version=f"{csv_file.name}@{time.time():.0f}", products=products
    )
    client = connect_client(_config(config_path), "catalog-push")
    info = client.publish(topic, msg.model_dump_json(), qos=1, retain=True)
    try:
        info.wait_for_publish(10)
        if not info.is_published():
            raise RuntimeError("no acknowledgement within 10 s")
    except (RuntimeError, ValueError) as exc:
        click.echo(f"error: the broker did not take the catalog: {exc}", err=True)
        sys.exit(1)
    finally:
        client.disconnect()
        client.loop_stop()
    click.echo(f"{len(products)} products sent to {device} ({topic}, retained)")


@main.command()
@click.option("--seconds", default=60.0, show_default=True, help="How long; 0 runs until Ctrl-C.")
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".demo"),
    show_default=True,
    help="Where the demo keeps its configs and databases (wiped first).",
)
def demo(seconds: float, workdir: Path) -> None:
    """Run the whole system on this machine: collector, embedded broker, two boxes.

    Example: shian-cloud demo --seconds 30
    """
    from cloud.demo import run_demo

    sys.exit(run_demo(workdir, seconds))


register_alert_commands(main, config_option, _config, _store)
register_device_commands(main, config_option, _config, _store)
register_install_commands(main, config_option, _config)
register_fleet_commands(main, config_option, _config, _store)
register_site_commands(main, config_option, _config, _store)
register_live_commands(main, config_option, _config, _store)
register_patrol_commands(main, config_option, _config, _store)
register_ledger_commands(main, config_option, _config, _store)
register_cluster_commands(main, config_option, _config)

if __name__ == "__main__":
    main()
