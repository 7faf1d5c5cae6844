"""``shian-cloud`` commands for supervisors and operators: alerts, sites, supervisors, certs."""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shared.clikit import Decorator, json_option, print_rows, run_for

ConfigFn = Callable[[Path | None], Any]
StoreFn = Callable[..., Any]


def connect_client(cfg: Any, role: str) -> Any:
    """A connected, looping MQTT client for a command; exits with a clear error if the
    broker cannot be reached."""
    from shared.mqtt import make_client, protocols

    s = cfg.broker()
    try:
        client = make_client(s, f"{role}-{uuid.uuid4().hex[:8]}", protocols(s)[-1])
        client.connect(s.host, s.port, s.keepalive_s)
    except (OSError, ValueError) as exc:  # unreachable, or a CA or password file missing
        click.echo(f"error: cannot reach the broker at {s.url}: {exc}", err=True)
        sys.exit(1)
    client.loop_start()
    return client


def allowed_district(cfg: Any, district: str | None) -> str:
    """The district a command may read: a supervisor's config allows their own only."""
    own = cfg.supervisor.district if cfg.supervisor else None
    if own and district and district != own:
        raise click.ClickException(
            f"not allowed: {cfg.supervisor.name} supervises {own}, not {district}"
        )
    if not (district or own):
        raise click.UsageError("give --district (or use a supervisor's own config)")
    return str(district or own)


def acting_supervisor(cfg: Any, supervisor: str | None) -> str:
    """Who acts: a supervisor's config acts as them and nobody else."""
    own = cfg.supervisor.name if cfg.supervisor else None
    if own and supervisor and supervisor != own:
        raise click.ClickException(f"not allowed: this login is {own}'s, not {supervisor}'s")
    if not (supervisor or own):
        raise click.UsageError("give --as (or use a supervisor's own config)")
    return str(supervisor or own)


def write_supervisor_config(cfg: Any, name: str, district: str, password: str) -> Path:
    """A supervisor's own client config: their broker login, the broker the boxes use."""
    from shared.secretfiles import write_secret

    p = cfg.provisioning
    lines = [
        f"# Shian: supervisor {name}'s own login (district {district}); keep it to yourself",
        "[supervisor]",
        f"name = {json.dumps(name)}",
        f"district = {json.dumps(district)}",
        "",
        "[mqtt]",
        f"url = {json.dumps(p.device_broker_url)}",
        f"username = {json.dumps(name)}",
        f"password = {json.dumps(password)}",
    ]
    folder = cfg.data_dir / "supervisors" / name
    if p.ca_file is not None:  # theirs to keep beside it: the broker's CA, not a path here
        write_secret(folder / "ca.pem", Path(p.ca_file).read_bytes(), 0o644)
        lines.append('ca_file = "ca.pem"  # beside this file')
    path = folder / f"{name}.toml"
    write_secret(path, "\n".join(lines) + "\n")
    return Path(path)


def send_command(
    cfg: Any,
    supervisor: str,
    alert: str,
    action: str,
    note: str = "",
    due_s: float | None = None,
    timeout: float = 10,
) -> dict[str, Any]:
    """Publish a supervisor's command and wait for the collector's reply."""
    from shared import SCHEMA_VERSION
    from shared.alerts import SupervisorCommand, supervisor_topic

    replies: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    subscribed = threading.Event()
    client = connect_client(cfg, f"sup-{supervisor}")
    client.on_message = lambda _c, _u, m: replies.put(bytes(m.payload))
    client.on_subscribe = lambda *_a: subscribed.set()
    client.subscribe(supervisor_topic(supervisor, "reply"), qos=1)
    cmd = SupervisorCommand.model_validate(
        {
            "v": SCHEMA_VERSION,
            "id": uuid.uuid4().hex,
            "alert": alert,
            "action": action,
            "note": note,
            "due_s": due_s,
        }
    )
    subscribed.wait(timeout)  # the reply must not come before the subscription
    client.publish(supervisor_topic(supervisor, "cmd"), cmd.model_dump_json(), qos=1)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                reply: dict[str, Any] = json.loads(replies.get(timeout=0.2))
            except queue.Empty:
                continue
            if reply.get("id") in (cmd.id, ""):
                return reply
        return {"id": cmd.id, "ok": False, "reason": "no reply from the collector"}
    finally:
        client.disconnect()
        client.loop_stop()


def register(
    main: click.Group, config_option: Decorator, get_config: ConfigFn, get_store: StoreFn
) -> None:
    @main.group()
    def alerts() -> None:
        """Alerts: list, show, watch, and move them along the rectification loop.

        Example: shian-cloud alerts list --district xianan --state open
        """

    @alerts.command("list")
    @config_option
    @click.option("--district", help="Only this district.")
    @click.option("--state", help="Only this state (open, acknowledged, ...).")
    @json_option
    def alerts_list(
        config_path: Path | None, district: str | None, state: str | None, as_json: bool
    ) -> None:
        """List alerts, newest first.

        Example: shian-cloud alerts list --district xianan --json
        """
        store = get_store(config_path)
        rows = [r for r in store.alerts.list(district=district, state=state)]
        print_rows(
            rows, ["id", "state", "severity", "type", "site", "source", "count", "due"], as_json
        )

    @alerts.command("show")
    @click.argument("alert_id")
    @config_option
    @json_option
    def alerts_show(alert_id: str, config_path: Path | None, as_json: bool) -> None:
        """Show one alert with its history.

        Example: shian-cloud alerts show 01a2163b-7bee-7102-8423-f30d289971eb
        """
        a = get_store(config_path).alerts.get(alert_id)
        if a is None:
            click.echo(f"error: no alert {alert_id}", err=True)
            sys.exit(1)
        if as_json:
            click.echo(json.dumps(a, ensure_ascii=False, indent=2))
            return
        for k in (
            "id",
            "state",
            "severity",
            "type",
            "district",
            "site",
            "device",
            "camera",
            "title",
            "first_seen",
            "last_seen",
            "count",
            "due",
            "escalated",
            "snapshot_url",
        ):
            click.echo(f"{k:>13}: {a.get(k)}")
        for step in a["history"]:
            click.echo(f"  {step['at']}  {step['state']:<24} {step['actor']:<22} {step['note']}")

    def action_command(name: str, action: str, doc: str) -> None:
        @alerts.command(name, help=doc)
        @click.argument("alert_id")
        @click.option("--as", "supervisor", help="The supervisor acting (a supervisor's: them).")
        @click.option("--note", default="", help="A remark kept in the alert's history.")
        @config_option
        def _cmd(
            alert_id: str, supervisor: str | None, note: str, config_path: Path | None, **kw: Any
        ) -> None:
            due = kw.get("due_hours")
            cfg = get_config(config_path)
            supervisor = acting_supervisor(cfg, supervisor)
            reply = send_command(
                cfg,
                supervisor,
                alert_id,
                action,
                note,
                due * 3600 if due else None,
            )
            if not reply.get("ok"):
                click.echo(f"refused: {reply.get('reason')}", err=True)
                sys.exit(1)
            a = reply["alert"]
            click.echo(f"{a['id']}: {a['state']}" + (f", due {a['due']}" if a.get("due") else ""))

        if action == "request_rectification":
            click.option("--due-hours", type=float, help="Deadline (default by alert type).")(_cmd)

    action_command(
        "ack", "ack", "Acknowledge an alert.\n\nExample: shian-cloud alerts ack ID --as wang"
    )
    action_command(
        "request-rectification",
        "request_rectification",
        "Ask the business to rectify, by a deadline; its boxes get a notice.\n\n"
        "Example: shian-cloud alerts request-rectification ID --as wang --due-hours 2",
    )
    action_command(
        "verify",
        "verify",
        "Verify a rectification and close the alert.\n\n"
        "Example: shian-cloud alerts verify ID --as wang --note 'checked on site'",
    )
    action_command(
        "close", "close", "Close an alert.\n\nExample: shian-cloud alerts close ID --as wang"
    )
    action_command(
        "reopen",
        "reopen",
        "Reopen a rectified or closed alert.\n\nExample: shian-cloud alerts reopen ID --as wang",
    )

    @alerts.command("watch")
    @click.option("--district", help="The district to watch (a supervisor's: their own).")
    @click.option("--seconds", default=0.0, help="Stop after this long; 0 runs until Ctrl-C.")
    @config_option
    def alerts_watch(district: str | None, seconds: float, config_path: Path | None) -> None:
        """Print alerts of a district as they change (a live MQTT subscriber), with the
        supervisor's own client config from `supervisors add`.

        Example: shian-cloud alerts watch --config wang.toml
        """
        from shared.alerts import AlertMessage, escalations_topic
        from shared.topics import ROOT

        cfg = get_config(config_path)
        district = allowed_district(cfg, district)

        seen: set[tuple[str, int]] = set()

        def show(_c: Any, _u: Any, m: Any) -> None:
            try:
                a = AlertMessage.model_validate_json(m.payload)
            except ValueError as exc:  # say so, and keep watching
                click.echo(f"unreadable message on {m.topic}: {str(exc)[:200]}", err=True)
                return
            if (a.id, a.version) in seen:
                return  # a message sent again after a reconnect
            seen.add((a.id, a.version))
            tag = "ESCALATED " if "/escalations/" in m.topic else ""
            click.echo(
                f"{tag}[{a.severity}] {a.type} {a.site} {a.state} x{a.count} {a.id}: {a.title}",
                color=None,
            )

        client = connect_client(cfg, f"watch-{district}")
        client.on_message = show
        client.subscribe([(f"{ROOT}/alerts/{district}/+", 1), (escalations_topic(district), 1)])
        try:
            run_for(seconds)
        finally:
            client.disconnect()
            client.loop_stop()

    @main.group()
    def sites() -> None:
        """Sites and their districts.

        Example: shian-cloud sites set canteen-001 --district xianan --name '实验外国语学校食堂'
        """

    @sites.command("set")
    @click.argument("site")
    @click.option("--district", required=True, help="The supervising district.")
    @click.option("--name", default="", help="The business's name.")
    @click.option(
        "--morning-check-by",
        default="",
        help="A kitchen: alert when no morning check by this local time (HH:MM).",
    )
    @config_option
    def sites_set(
        site: str, district: str, name: str, morning_check_by: str, config_path: Path | None
    ) -> None:
        """Register a site (or change its district).

        Example: shian-cloud sites set canteen-001 --district xianan --morning-check-by 09:00
        """
        import re

        if morning_check_by and not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", morning_check_by):
            raise click.BadParameter("HH:MM", param_hint="--morning-check-by")
        try:
            get_store(config_path, create=True).sites.set(site, district, name, morning_check_by)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{site}: district {district}")

    @sites.command("import")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @config_option
    def sites_import(csv_file: Path, config_path: Path | None) -> None:
        """Register many sites from a CSV file (columns site, district, and optionally name,
        morning_check_by); nothing is written if any row is wrong.

        Example: shian-cloud sites import sites.csv
        """
        from cloud.alerts.sites import SiteError, parse_sites

        try:
            rows = parse_sites(csv_file.read_text(encoding="utf-8-sig"))
        except (SiteError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"{csv_file}: {exc}") from None
        get_store(config_path, create=True).sites.set_many(rows)
        districts = len({r[1] for r in rows})
        click.echo(f"{len(rows)} sites registered in {districts} district(s)")

    @sites.command("list")
    @config_option
    @json_option
    def sites_list(config_path: Path | None, as_json: bool) -> None:
        """List registered sites.

        Example: shian-cloud sites list --json
        """
        print_rows(
            get_store(config_path).sites.table("sites"), ["site", "district", "name"], as_json
        )

    @main.group()
    def supervisors() -> None:
        """Supervisors (food-safety officers) and their districts.

        Example: shian-cloud supervisors add wang --district xianan
        """

    @supervisors.command("add")
    @click.argument("name")
    @click.option("--district", required=True, help="The district they supervise.")
    @click.option(
        "--role",
        type=click.Choice(["supervisor", "leader", "inspector"]),
        default="supervisor",
        show_default=True,
        help="supervisor: works their district; leader: reads the whole city in the console "
        "and assigns patrols; inspector: works the patrols given to them (/patrol).",
    )
    @click.option(
        "--firm",
        default="",
        help="For an inspector of a third-party service firm: the firm (patrols can be "
        "given to the firm, and any of its inspectors takes them).",
    )
    @click.option(
        "--credentials/--no-credentials",
        default=True,
        show_default=True,
        help="Also make their broker login (read only their district's alerts).",
    )
    @config_option
    @json_option
    def supervisors_add(
        name: str,
        district: str,
        role: str,
        firm: str,
        credentials: bool,
        config_path: Path | None,
        as_json: bool,
    ) -> None:
        """Register a supervisor; their commands count only in their district, and their broker
        login reads only their district's alerts. Writes their own client config (0600, it
        holds their password) into <data_dir>/supervisors/: hand it to them.

        Example: shian-cloud supervisors add wang --district xianan
        """
        store = get_store(config_path, create=True)
        if firm and role != "inspector":
            raise click.BadParameter("only an inspector belongs to a firm", param_hint="--firm")
        if not credentials:
            try:
                store.sites.add_supervisor(name, district, role, firm)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
            click.echo(f"supervisor {name}: district {district}")
            return
        from cloud.devices_cli import add_supervisor_credentials
        from cloud.provisioning import ProvisioningError

        cfg = get_config(config_path)
        try:
            password = add_supervisor_credentials(cfg, store, name, district, role, firm)
        except ProvisioningError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        own = write_supervisor_config(cfg, name, district, password)
        if as_json:
            out = {"supervisor": name, "district": district, "password": password}
            click.echo(json.dumps({**out, "config": str(own)}))
            return
        click.echo(f"supervisor {name}: district {district}; their login is in {own} (0600).")
        click.echo(
            f"Hand it to them; they run: shian-cloud alerts watch --config {own.name} "
            f"(and alerts ack ID --config {own.name})"
        )

    @supervisors.command("list")
    @config_option
    @json_option
    def supervisors_list(config_path: Path | None, as_json: bool) -> None:
        """List supervisors.

        Example: shian-cloud supervisors list
        """
        print_rows(
            get_store(config_path).sites.table("supervisors"),
            ["name", "district", "role", "firm"],
            as_json,
        )

    @main.group()
    def certs() -> None:
        """Licences and certificates, with expiry alerts 30, 7 and 0 days ahead.

        Example: shian-cloud certs import certificates.csv
        """

    @certs.command("import")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @config_option
    def certs_import(csv_file: Path, config_path: Path | None) -> None:
        """Import licences and certificates (site, kind, holder, number, expires); the running
        collector checks them at once and daily.

        Example: shian-cloud certs import certificates.csv
        """
        from cloud.alerts.certs import CertError

        try:
            n = get_store(config_path, create=True).sites.import_certs(
                csv_file.read_text(encoding="utf-8-sig")
            )
        except CertError as exc:
            click.echo(f"error: {csv_file}: {exc}", err=True)
            sys.exit(1)
        click.echo(f"{n} certificates imported")

    @certs.command("list")
    @config_option
    @json_option
    def certs_list(config_path: Path | None, as_json: bool) -> None:
        """List licences and certificates.

        Example: shian-cloud certs list --json
        """
        print_rows(
            get_store(config_path).sites.table("certs"),
            ["number", "site", "kind", "holder", "expires", "stage"],
            as_json,
        )
