"""``shian-edge ledger``: record a delivery by hand or by scanning a stall's ticket, and list
the recent ones (docs/ledger.md). The running agent sends them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from edge.config import EdgeConfig
from shared.clikit import json_option, load_config, print_rows

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _queue(config_path: Path, data: dict[str, Any]) -> str:
    from edge.store.outbox import Outbox, OutboxError
    from shared.kinds import Purchase

    cfg = load_config(config_path, EdgeConfig)
    try:
        entry = Purchase.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise click.ClickException(f"{where}: {err['msg']}") from None
    ob = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    try:
        return ob.enqueue("purchase", entry).id
    except OutboxError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ob.close()


def register(main: click.Group, config_option: Decorator) -> None:
    @main.group()
    def ledger() -> None:
        """The purchase ledger (进货查验记录): deliveries by hand or by a stall's ticket.

        Example: shian-edge ledger scan 'https://trace.example.gov.cn/t/...?s=...' --by 李四
        """

    @ledger.command("add")
    @click.option("--supplier", required=True)
    @click.option("--licence", "supplier_licence", default="", help="The supplier's licence no.")
    @click.option("--product", required=True)
    @click.option("--batch", default="")
    @click.option("--quantity", type=float, required=True)
    @click.option("--unit", default="kg", show_default=True,
                  type=click.Choice(["kg", "piece", "box", "bag", "bottle", "litre"]))  # fmt: skip
    @click.option("--produced", default=None, help="YYYY-MM-DD.")
    @click.option("--expires", default=None, help="Use by, YYYY-MM-DD.")
    @click.option("--by", required=True, help="Who took the delivery in.")
    @config_option
    def ledger_add(config_path: Path, **fields: Any) -> None:
        """Record a delivery typed in.

        Example: shian-edge ledger add --supplier 咸宁粮油 --product 大米 --quantity 50 --by 李四
        """
        click.echo(f"recorded (event {_queue(config_path, fields)})")

    @ledger.command("scan")
    @click.argument("code")
    @click.option("--by", required=True, help="Who took the delivery in.")
    @click.option("--expires", default=None, help="Use by, YYYY-MM-DD (a ticket has none).")
    @config_option
    def ledger_scan(code: str, by: str, expires: str | None, config_path: Path) -> None:
        """Record a delivery from a market stall's ticket: CODE is what the scanner typed (the
        ticket's link). The ticket is asked of this box's collector and must be genuine.

        Example: shian-edge ledger scan 'https://trace.example.gov.cn/t/abc...?s=...' --by 李四
        """
        from edge.ledger.scan import ScanError, entry_from, fetch_ticket, parse_code

        cfg = load_config(config_path, EdgeConfig)
        try:
            ticket_id, sig = parse_code(code)
            ticket = fetch_ticket(cfg.ledger.trace_url, ticket_id, sig)
        except ScanError as exc:
            raise click.ClickException(str(exc)) from None
        data = entry_from(ticket, by, expires)
        event = _queue(config_path, data)
        click.echo(json.dumps({"event": event, **data}, ensure_ascii=False))

    @ledger.command("list")
    @config_option
    @json_option
    def ledger_list(config_path: Path, as_json: bool) -> None:
        """The deliveries recorded on this box, newest first.

        Example: shian-edge ledger list
        """
        from edge.store.outbox import Outbox

        cfg = load_config(config_path, EdgeConfig)
        ob = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
        try:
            rows = [{**e["data"], "at": e["created"]} for e in ob.recent(10_000)
                    if e["kind"] == "purchase"]  # fmt: skip
        finally:
            ob.close()
        print_rows(rows, ["product", "batch", "quantity", "unit", "supplier", "expires"], as_json)
        sys.exit(0)
