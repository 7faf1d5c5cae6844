"""``shian-cloud sites``: a site's kind and grade, and the QR code of its public page."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cloud.sites import GRADES, KINDS
from shared.clikit import Decorator


def page_url(cfg: Any, site: str) -> str:
    """The site's public page, under the public address the ticket pages use."""
    from shared.topics import check_name

    return f"{cfg.provisioning.ticket_base_url.rstrip('/')}/k/{check_name(site, 'site')}"


def register(
    main: click.Group,
    config_option: Decorator,
    get_config: Callable[..., Any],
    get_store: Callable[..., Any],
) -> None:
    sites = main.commands["sites"]
    assert isinstance(sites, click.Group)

    @sites.command("describe")
    @click.argument("site")
    @click.option("--kind", type=click.Choice(list(KINDS)), help="What the site is.")
    @click.option(
        "--grade", type=click.Choice(list(GRADES)), help="The regulator's food-safety grade."
    )
    @config_option
    def sites_describe(
        site: str, kind: str | None, grade: str | None, config_path: Path | None
    ) -> None:
        """Set what a site's public page says it is, and its grade (the regulator's).

        Example: shian-cloud sites describe canteen-001 --kind school_canteen --grade good
        """
        try:
            get_store(config_path).sites.describe(site, kind, grade, time.time())
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{site}: {kind or '(kind kept)'}, grade {grade or '(kept)'}")

    @sites.command("qr")
    @click.argument("site")
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The QR code as a PNG (default: <site>.png here).",
    )
    @config_option
    def sites_qr(site: str, out: Path | None, config_path: Path | None) -> None:
        """Print the site's public page address and write its QR code (a PNG to print and put
        at the door; it opens in a phone's browser or a WeChat web view).

        Example: shian-cloud sites qr canteen-001 --out canteen-001.png
        """
        import qrcode

        try:
            url = page_url(get_config(config_path), site)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        out = out or Path(f"{site}.png")
        img = qrcode.make(url, error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10)
        img.save(str(out))
        click.echo(url)
        click.echo(f"QR code: {out}")
