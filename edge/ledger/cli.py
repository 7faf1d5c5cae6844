"""``shian-edge ledger``: record a delivery by hand or by scanning a stall's ticket, and list
the recent ones (docs/ledger.md). The running agent sends them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from edge.config import EdgeConfig
from shared.clikit import Decorator, json_option, load_config, print_rows
from shared.codec import first_error

CATEGORIES = ["vegetable", "fruit", "meat", "aquatic", "egg", "dairy", "grain", "oil",
              "condiment", "frozen", "other"]  # fmt: skip


def photo_option(flag: str, help_: str) -> Decorator:
    return click.option(flag, type=click.Path(exists=True, dir_okay=False, path_type=Path),
                        default=None, help=help_ + " JPEG or any image OpenCV reads.")  # fmt: skip


category_option = click.option(
    "--category", default="other", show_default=True, type=click.Choice(CATEGORIES),
    help="Product class: when it is near expiry follows it.",
)  # fmt: skip


def _stock(config_path: Path) -> tuple[EdgeConfig, Any]:
    """The box's config, and its stock on its outbox (the caller closes it)."""
    from edge.ledger.stock import Stock
    from edge.store.outbox import Outbox

    cfg = load_config(config_path, EdgeConfig)
    tz = cfg.kitchen.timezone_offset_h if cfg.kitchen else 8
    ob = Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)
    return cfg, Stock(ob, cfg.ledger.near_expiry_days, tz)


def _queue(config_path: Path, data: dict[str, Any], photos: dict[str, Path] | None = None) -> str:
    """Record a purchase (with its photos) and its lot in stock; the event's id."""
    from edge.store.outbox import OutboxError

    cfg, stock = _stock(config_path)
    evidence = cfg.kitchen.evidence_dir if cfg.kitchen and cfg.kitchen.evidence_dir else None
    try:
        return str(stock.record(data, photos, evidence or cfg.data_dir / "evidence"))
    except ValidationError as exc:
        raise click.ClickException(first_error(exc)) from None
    except OutboxError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        stock.outbox.close()


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
    @category_option
    @click.option("--by", required=True, help="Who took the delivery in.")
    @photo_option("--licence-photo", "The supplier's licence, photographed.")
    @photo_option("--report-photo", "The batch's test report, photographed.")
    @config_option
    def ledger_add(config_path: Path, licence_photo: Path | None, report_photo: Path | None,
                   **fields: Any) -> None:  # fmt: skip
        """Record a delivery typed in, with photos of the supplier's licence and the batch's
        test report (sent with it as snapshots).

        Example: shian-edge ledger add --supplier 咸宁粮油 --product 大米 --quantity 50 --by 李四
        """
        photos = {k: v for k, v in (("licence_photo", licence_photo),
                                    ("report_photo", report_photo)) if v is not None}  # fmt: skip
        click.echo(f"recorded (event {_queue(config_path, fields, photos)})")

    @ledger.command("scan")
    @click.argument("code")
    @click.option("--by", required=True, help="Who took the delivery in.")
    @click.option("--expires", default=None, help="Use by, YYYY-MM-DD (a ticket has none).")
    @category_option
    @config_option
    def ledger_scan(
        code: str, by: str, expires: str | None, category: str, config_path: Path
    ) -> None:
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
        data = {**entry_from(ticket, by, expires), "category": category}
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

    @main.group()
    def stock() -> None:
        """Storage (仓储): the lots in stock, first-expired first-out, and taking stock out.

        Example: shian-edge stock list
        """

    @stock.command("list")
    @config_option
    @json_option
    def stock_list(config_path: Path, as_json: bool) -> None:
        """The lots in stock, first-expired first-out.

        Example: shian-edge stock list --json
        """
        _, s = _stock(config_path)
        try:
            rows = s.lots()
        finally:
            s.outbox.close()
        print_rows(rows, ["lot", "product", "batch", "left", "unit", "expires", "warned"], as_json)

    @stock.command("out")
    @click.argument("lot")
    @click.option("--quantity", type=float, required=True)
    @click.option("--reason", default="used", show_default=True,
                  type=click.Choice(["used", "discarded", "returned"]))  # fmt: skip
    @click.option("--by", required=True)
    @config_option
    def stock_out(lot: str, quantity: float, reason: str, by: str, config_path: Path) -> None:
        """Take stock out of a lot (never below nothing).

        Example: shian-edge stock out 01a2163b-7bee-7102-8423-f30d289971eb --quantity 2 --by 李四
        """
        from edge.store.outbox import OutboxError

        _, s = _stock(config_path)
        try:
            click.echo(f"taken (event {s.take(lot, quantity, reason, by)})")
        except OutboxError as exc:
            raise click.ClickException(str(exc)) from None
        except ValidationError as exc:  # a name too long for the record, say
            raise click.ClickException(first_error(exc)) from None
        finally:
            s.outbox.close()
