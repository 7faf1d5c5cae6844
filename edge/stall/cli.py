"""``shian-edge`` commands for a market stall: scale, catalog, tickets, printer, stall."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from edge.config import EdgeConfig, StallSettings
from shared.clikit import Decorator, json_option, limit_option, load_config, print_rows, run_for


def _stall_config(config_path: Path) -> tuple[EdgeConfig, StallSettings]:
    cfg = load_config(config_path, EdgeConfig)
    if cfg.stall is None:
        click.echo(f"error: {config_path} has no [stall] table: this box is not a stall", err=True)
        sys.exit(2)
    return cfg, cfg.stall


def _outbox(cfg: EdgeConfig) -> Any:
    from edge.store.outbox import Outbox

    return Outbox(cfg.outbox_path, cfg.device, cfg.site, cfg.outbox)


def register(main: click.Group, config_option: Decorator) -> None:
    """Add the stall commands to the ``shian-edge`` group."""

    @main.group()
    def scale() -> None:
        """Scales: decode captured bytes, watch the live weight, list profiles.

        Example: shian-edge scale decode --profile ad_st_gs capture.bin
        """

    @scale.command("decode")
    @click.option("--profile", "profile_name", required=True, help="Scale profile name or path.")
    @click.argument("source", type=click.File("rb"), default="-")
    def scale_decode(profile_name: str, source: Any) -> None:
        """Print one JSON line per frame found in the bytes of FILE (or - for stdin): grams,
        stable, net, overload and raw, or error with the reason.

        Example: shian-edge scale decode --profile qhw_st_gs capture.bin
        """
        from edge.stall.framing import decode_stream
        from edge.stall.profiles import load_scale_profile

        try:
            profile = load_scale_profile(profile_name)
        except FileNotFoundError as exc:
            raise click.BadParameter(str(exc), param_hint="--profile") from None
        for r in decode_stream(profile, source.read()):
            click.echo(json.dumps(r.as_json(), ensure_ascii=False))

    @scale.command("profiles")
    @json_option
    def scale_profiles(as_json: bool) -> None:
        """List the scale profiles in firmware_profiles/scales.

        Example: shian-edge scale profiles
        """
        from edge.stall.profiles import load_scale_profile, profile_names

        rows = []
        for name in profile_names():
            p = load_scale_profile(name)
            s = p.serial
            rows.append(
                {
                    "name": name,
                    "serial": f"{s.baudrate} {s.bytesize}{s.parity}{s.stopbits}",
                    "mode": "polled" if p.poll else "continuous",
                    "title": p.title,
                }
            )
        print_rows(rows, ["name", "serial", "mode", "title"], as_json)

    @scale.command("simulate")
    @click.option("--profile", "profile_name", required=True, help="Scale profile (its pace).")
    @click.option(
        "--capture",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Bytes to replay (a capture); default: steady A&D frames of --grams.",
    )
    @click.option("--grams", default=1234.0, show_default=True, help="Weight of made-up frames.")
    @click.option(
        "--link",
        type=click.Path(path_type=Path),
        required=True,
        help="Path of the symlink to the pseudo-terminal (the port to configure).",
    )
    @click.option("--seconds", default=0.0, help="Stop after this long; 0 runs until Ctrl-C.")
    def scale_simulate(
        profile_name: str, capture: Path | None, grams: float, link: Path, seconds: float
    ) -> None:
        """Pretend to be a scale on a pseudo-terminal, replaying a capture at the profile's
        pace: for a demo, or to try a stall screen with no scale at hand.

        Example: shian-edge scale simulate --profile qhw_st_gs --capture qhw.bin --link /tmp/scale
        """
        from edge.stall.profiles import load_scale_profile, to_bytes
        from edge.stall.virtual import VirtualScale, made_up_frames

        profile = load_scale_profile(profile_name)
        if capture is not None:
            data, end = capture.read_bytes(), to_bytes(profile.frame.end)
        else:
            data, end = made_up_frames(grams)
        vs = VirtualScale(link, data, end, profile.rate_hz).start()
        click.echo(f"virtual scale on {link}", err=True)
        try:
            run_for(seconds)
        finally:
            vs.stop()

    @scale.command("watch")
    @config_option
    @click.option("--seconds", default=0.0, help="Stop after this long; 0 runs until Ctrl-C.")
    def scale_watch(config_path: Path, seconds: float) -> None:
        """Show the live weight from the configured scale port (stop the agent first: a serial
        port has one reader).

        Example: shian-edge scale watch --config /etc/shian/edge.toml
        """
        from edge.stall.profiles import load_scale_profile
        from edge.stall.scale import ScaleReader

        _, stall = _stall_config(config_path)
        if stall.scale is None:
            click.echo("error: no [stall.scale] configured", err=True)
            sys.exit(2)
        last: list[str] = [""]

        def show(w: Any, r: Any) -> None:
            line = (
                f"{w.state:<9} {w.grams if w.grams is not None else '-':>10} g"
                + ("  net" if w.net else "")
                + (f"  ({r.error})" if r.error else "")
            )
            if line != last[0]:
                click.echo(line)
                last[0] = line

        reader = ScaleReader(
            stall.scale.port,
            load_scale_profile(stall.scale.profile),
            on_fault=lambda state, reason: click.echo(f"scale {state}: {reason}", err=True),
        )
        reader.listeners.append(show)
        reader.start()
        try:
            run_for(seconds, 0.1)
        finally:
            reader.stop()
        click.echo(json.dumps(reader.counters))

    @main.group()
    def catalog() -> None:
        """The stall's products and batches.

        Example: shian-edge catalog import products.csv
        """

    @catalog.command("import")
    @click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @config_option
    def catalog_import(csv_file: Path, config_path: Path) -> None:
        """Load the catalog from a CSV file (for a stall with no network yet); the cloud's
        next push replaces it.

        Example: shian-edge catalog import products.csv --config /etc/shian/edge.toml
        """
        from edge.stall.catalog import Catalog
        from shared.catalog import CatalogError, parse_csv

        cfg, _ = _stall_config(config_path)
        try:
            products = parse_csv(csv_file.read_text(encoding="utf-8-sig"))
        except (CatalogError, UnicodeDecodeError) as exc:
            click.echo(f"error: {csv_file}: {exc}", err=True)
            sys.exit(1)
        ob = _outbox(cfg)
        try:
            Catalog(ob).replace(products, f"file:{csv_file.name}:{time.time():.0f}")
        finally:
            ob.close()
        click.echo(f"{len(products)} products imported")

    @catalog.command("list")
    @config_option
    @json_option
    def catalog_list(config_path: Path, as_json: bool) -> None:
        """List the cached catalog.

        Example: shian-edge catalog list --json
        """
        from edge.stall.catalog import Catalog

        cfg, _ = _stall_config(config_path)
        ob = _outbox(cfg)
        try:
            rows = [p.model_dump(mode="json") for p in Catalog(ob).all()]
        finally:
            ob.close()
        print_rows(rows, ["plu", "name", "unit", "unit_price_cents", "origin", "batch"], as_json)

    @main.group()
    def tickets() -> None:
        """Tickets issued at this stall.

        Example: shian-edge tickets list
        """

    def _book(cfg: EdgeConfig, stall: StallSettings) -> Any:
        from edge.stall.service import ticket_key
        from edge.stall.tickets import TicketBook

        return TicketBook(_outbox(cfg), stall, ticket_key(stall))

    @tickets.command("list")
    @config_option
    @limit_option
    @json_option
    def tickets_list(config_path: Path, limit: int, as_json: bool) -> None:
        """List tickets, newest first, with print state and page URL.

        Example: shian-edge tickets list --limit 10
        """
        cfg, stall = _stall_config(config_path)
        book = _book(cfg, stall)
        rows = book.list(limit)
        book.outbox.close()
        for r in rows:
            r["printed"] = "yes" if r["printed"] else f"pending ({r['last_error'] or 'queued'})"
        print_rows(
            rows, ["ticket_id", "product", "quantity", "total_cents", "printed", "url"], as_json
        )

    @tickets.command("reprint")
    @click.argument("ticket_id")
    @config_option
    def tickets_reprint(ticket_id: str, config_path: Path) -> None:
        """Queue a ticket to be printed again; the running agent prints it.

        Example: shian-edge tickets reprint 01a2b3c4d5e6f7g8h9j0k1m2n3
        """
        cfg, stall = _stall_config(config_path)
        book = _book(cfg, stall)
        ok = book.reprint(ticket_id)
        book.outbox.close()
        if not ok:
            click.echo(f"error: no ticket {ticket_id}", err=True)
            sys.exit(1)
        click.echo(f"ticket {ticket_id} queued for printing")

    @main.group()
    def printer() -> None:
        """The ticket printer.

        Example: shian-edge printer test --to file:/tmp/ticket.bin
        """

    @printer.command("test")
    @click.option(
        "--to",
        "target",
        required=True,
        help="file:PATH, network:HOST[:PORT], serial:DEV[:BAUD], usb:VID:PID or dummy.",
    )
    @click.option(
        "--profile",
        "profile_name",
        default="generic_58mm",
        show_default=True,
        help="Printer profile.",
    )
    def printer_test(target: str, profile_name: str) -> None:
        """Print a sample ticket (signed with a throwaway key) to TARGET.

        Example: shian-edge printer test --to file:/tmp/ticket.bin --profile generic_80mm
        """
        from edge.config import PrinterSettings
        from edge.stall.printer import PrinterError, PrinterLink, load_printer_profile, render

        ticket, url = sample_ticket()
        link = PrinterLink(PrinterSettings(connection=target), load_printer_profile(profile_name))
        job = render(ticket, url, link.profile)
        try:
            link.send(job)
        except PrinterError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        click.echo(f"{len(job)} bytes sent to {target}; QR: {url}")

    @main.command("stall")
    @config_option
    def stall_cmd(config_path: Path) -> None:
        """Run the agent with a terminal for the vendor: choose a PLU, see the weight, print.

        Example: shian-edge stall --config /etc/shian/edge.toml
        """
        from edge.agent import Agent
        from edge.stall.tickets import SaleRefused

        cfg, _ = _stall_config(config_path)
        agent = Agent(cfg)
        assert agent.stall is not None
        stall = agent.stall
        agent.start()
        try:
            for p in stall.catalog.all():
                click.echo(f"  {p.plu:>6}  {p.name}  {p.unit_price_cents / 100:.2f}/{p.unit}")
            while True:
                w = stall.weight
                chosen = stall.selected or "-"
                answer = click.prompt(
                    f"[{chosen}] weight {w.state} {w.grams if w.grams is not None else '-'} g"
                    " | PLU to choose, p to print, q to quit",
                    default="",
                    show_default=False,
                ).strip()
                if answer == "q":
                    break
                try:
                    if answer == "p":
                        stall.settle()
                        sold = stall.sell()
                        click.echo(f"ticket {sold['ticket']['ticket_id']}: {sold['url']}")
                    elif answer:
                        stall.select(answer)
                except SaleRefused as exc:
                    click.echo(f"  not now: {exc}")
        except (click.Abort, EOFError):
            pass
        finally:
            agent.stop()


def sample_ticket() -> tuple[dict[str, Any], str]:
    """A ticket for the printer test, signed with a throwaway key."""
    from shared.kinds import Ticket
    from shared.signing import new_key, new_ticket_id, sign, ticket_url

    t: dict[str, Any] = {
        "ticket_id": new_ticket_id(),
        "market": "华信农贸市场",
        "stall": "A-07",
        "retailer": "测试 Test",
        "plu": "101",
        "product": "白菜",
        "product_en": "Chinese cabbage",
        "goods_code": "",
        "batch": "TEST-0001",
        "origin": "湖北咸宁 Xianning, Hubei",
        "supplier": "",
        "inspection": {
            "item": "农残 pesticide",
            "result": "合格 pass",
            "date": "2026-11-25",
            "lab": "",
        },
        "unit": "kg",
        "quantity": 1234,
        "unit_price_cents": 380,
        "total_cents": 469,
        "time": "2026-11-26T04:00:00Z",
    }
    t["sig"] = sign(new_key(), t)
    Ticket.model_validate(t)
    return t, ticket_url("https://trace.example", t["ticket_id"], t["sig"])
