"""``shian-edge``: the box's command line, a thin layer over :mod:`edge.agent` and the outbox."""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from edge.config import DEFAULT_PATH, EdgeConfig
from edge.install_cli import register as register_install_commands
from edge.ledger.cli import register as register_ledger_commands
from edge.sensors.cli import register as register_sensor_commands
from edge.stall.cli import register as register_stall_commands
from edge.vision.cli import register as register_vision_commands
from shared.clikit import json_option, limit_option, load_config, log_option, print_rows
from shared.config import unreadable_files
from shared.kinds import KINDS
from shared.redact import redact


def config_option(f: Any) -> Any:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_PATH,
        show_default=True,
        envvar="SHIAN_EDGE_CONFIG",
        help="Edge config file (TOML); also $SHIAN_EDGE_CONFIG.",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="shian")
def main() -> None:
    """Shian edge agent: kitchen cameras, stall scales, and a durable outbox synced over MQTT.

    Example: shian-edge run --config /etc/shian/edge.toml
    """


@main.command()
@config_option
@log_option
def run(config_path: Path, log_level: str) -> None:
    """Run the agent until stopped (SIGTERM or Ctrl-C).

    Example: shian-edge run --config /etc/shian/edge.toml
    """
    from edge.agent import Agent
    from edge.updates.launch import RELEASE_ENV, exec_release, prepare
    from edge.updates.overlay import load_edge
    from edge.vision.detector import ModelError
    from shared.clikit import on_stop_signals, setup_logging
    from shared.config import ConfigError

    setup_logging(log_level)
    base = load_config(config_path, EdgeConfig)
    if not os.environ.get(RELEASE_ENV):  # a release's process: run did this before it
        prepare(base.data_dir)  # a staged update applied, or a failed one rolled back
        exec_release(base.data_dir, ["run", "--config", str(config_path), "--log-level", log_level])
    try:
        cfg = load_edge(config_path)  # with the config the cloud pushed over it
        agent = Agent(cfg, config_path=config_path)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"config error: {line}", err=True)
        sys.exit(2)
    except (OSError, ValueError, ModelError) as exc:  # a missing key, a bad model or profile
        click.echo(f"error: cannot start: {exc}", err=True)
        sys.exit(2)
    on_stop_signals(agent.request_stop)
    agent.run_forever()
    sys.exit(agent.exit_code)


@main.group()
def config() -> None:
    """Check the config file.

    Example: shian-edge config validate --config edge.toml
    """


@config.command("validate")
@config_option
def config_validate(config_path: Path) -> None:
    """Validate the config and check that every file it names can be read (run it as the
    service's user); name each problem, exit 2 if any.

    Example: sudo -u shian shian-edge config validate --config /etc/shian/edge.toml
    """
    from edge.updates.overlay import load_or_exit

    cfg = load_or_exit(config_path)  # with what the cloud pushed over it
    problems = unreadable_files(cfg)
    for line in problems:
        click.echo(f"config error: {config_path}: {line}", err=True)
    if problems:
        sys.exit(2)
    broker = redact(cfg.mqtt.url)
    click.echo(f"{config_path}: OK (device {cfg.device}, site {cfg.site}, broker {broker})")


@main.group()
def outbox() -> None:
    """Inspect the local outbox.

    Example: shian-edge outbox status --json
    """


@outbox.command("status")
@config_option
@json_option
@limit_option
def outbox_status(config_path: Path, as_json: bool, limit: int) -> None:
    """Show the outbox: unconfirmed depth, oldest age, drops, and the newest events.

    Example: shian-edge outbox status --config edge.toml --limit 10
    """
    from edge.store.outbox import Outbox

    cfg = load_config(config_path, EdgeConfig)
    ob = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    try:
        stats = ob.stats().model_dump()
        stats["last_seq"] = ob.last_seq()
        counters = ob.counters()
        stats["delivered_total"] = counters["delivered"]
        stats["confirmed_total"] = counters["confirmed"]
        recent = ob.recent(limit)
    finally:
        ob.close()
    if as_json:
        click.echo(json.dumps({"outbox": stats, "recent": recent}, ensure_ascii=False, indent=2))
        return
    for key, value in stats.items():
        click.echo(f"{key:>16}: {value}")
    click.echo("")
    for r in recent:
        r["created"] = _time(r["created"])
        r["delivered"] = _time(r["delivered"]) if r["delivered"] else "pending"
        r["confirmed"] = _time(r["confirmed"]) if r["confirmed"] else "pending"
    print_rows(recent, ["seq", "kind", "created", "delivered", "confirmed", "data"], False)


def _time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


@main.command()
@click.argument("kind", type=click.Choice(sorted(KINDS)))
@click.option("--data", "data_json", default="{}", show_default=True, help="Event data, JSON.")
@config_option
def emit(kind: str, data_json: str, config_path: Path) -> None:
    """Queue one event by hand; the running agent sends it.

    Example: shian-edge emit test --data '{"note": "installer check"}'
    """
    from edge.store.outbox import Outbox, OutboxError

    try:
        data = json.loads(data_json)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--data") from None
    cfg = load_config(config_path, EdgeConfig)
    ob = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    try:
        queued = ob.enqueue(kind, data)
    except OutboxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        ob.close()
    click.echo(json.dumps({"seq": queued.seq, "id": queued.id, "kind": kind}))


@main.group()
def notices() -> None:
    """Rectification notices from the regulator, and the business's answer.

    Example: shian-edge notices list
    """


@notices.command("list")
@config_option
@json_option
def notices_list(config_path: Path, as_json: bool) -> None:
    """List the notices this box has received (the latest state of each alert).

    Example: shian-edge notices list --json
    """
    from edge.notices import Notices
    from edge.store.outbox import Outbox

    cfg = load_config(config_path, EdgeConfig)
    ob = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    try:
        rows = Notices(ob).list()
    finally:
        ob.close()
    for r in rows:
        r["answered"] = "yes" if r["answered"] else "-"
    print_rows(rows, ["id", "state", "severity", "type", "due", "answered", "title"], as_json)


@notices.command("rectify")
@click.argument("alert_id")
@click.option("--note", default="", help="What was done.")
@click.option(
    "--photo",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A photo of the rectification (JPEG or any image OpenCV reads).",
)
@config_option
def notices_rectify(alert_id: str, note: str, photo: Path | None, config_path: Path) -> None:
    """Report that a notice has been rectified; the running agent sends it (and the photo).

    Example: shian-edge notices rectify 01a2163b-7bee-7102-8423-f30d289971eb --photo fixed.jpg
    """
    from edge.notices import Notices
    from edge.store.outbox import Outbox, OutboxError

    cfg = load_config(config_path, EdgeConfig)
    evidence = (
        cfg.kitchen.evidence_dir
        if cfg.kitchen and cfg.kitchen.evidence_dir
        else cfg.data_dir / "evidence"
    )
    ob = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    try:
        event_id = Notices(ob).rectify(alert_id, note, photo, evidence)
    except (OutboxError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        ob.close()
    click.echo(f"rectification queued (event {event_id})")


register_stall_commands(main, config_option)
register_install_commands(main, config_option)
register_vision_commands(main, config_option)
register_sensor_commands(main, config_option)
register_ledger_commands(main, config_option)

if __name__ == "__main__":
    main()
