"""``shian-cloud live``: the regulator's switch and cap, the player, the media server's config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shared.clikit import Decorator


def register(
    main: click.Group,
    config_option: Decorator,
    get_config: Callable[..., Any],
    get_store: Callable[..., Any],
) -> None:
    @main.group()
    def live() -> None:
        """Live views of public kitchen cameras (docs/live.md).

        Example: shian-cloud live off canteen-001
        """

    def switch(site: str, off: bool | None, cap: Any, config_path: Path | None) -> None:
        try:
            get_store(config_path).sites.set_live(site, off=off, cap=cap)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None

    @live.command("off")
    @click.argument("site")
    @config_option
    def live_off(site: str, config_path: Path | None) -> None:
        """Take a site's live views off at once (the regulator's switch): viewers see a
        notice within a second and its boxes stop sending.

        Example: shian-cloud live off canteen-001
        """
        switch(site, True, "", config_path)
        click.echo(f"{site}: live views off")

    @live.command("on")
    @click.argument("site")
    @config_option
    def live_on(site: str, config_path: Path | None) -> None:
        """Allow a site's public cameras again (within their public hours).

        Example: shian-cloud live on canteen-001
        """
        switch(site, False, "", config_path)
        click.echo(f"{site}: live views on")

    @live.command("cap")
    @click.argument("site")
    @click.argument("viewers", type=click.IntRange(min=0))
    @config_option
    def live_cap(site: str, viewers: int, config_path: Path | None) -> None:
        """Cap a site's concurrent viewers (0: the collector's [live] max_viewers_per_site).

        Example: shian-cloud live cap canteen-001 20
        """
        switch(site, None, viewers or None, config_path)
        click.echo(f"{site}: at most {viewers or 'the default number of'} viewers")

    @live.command("nginx-config")
    @click.option("--rtmp", default="0.0.0.0:1935", show_default=True, help="Boxes push here.")
    @click.option("--http", default="127.0.0.1:8081", show_default=True, help="Viewers here.")
    @click.option(
        "--hls-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=Path("/var/lib/shian-media/hls"),
        show_default=True,
        help="Where nginx writes the HLS (writable by nginx's user).",
    )
    @click.option(
        "--run-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=Path("/var/lib/shian-media"),
        show_default=True,
        help="nginx's pid, log and temporary files.",
    )
    @config_option
    def live_nginx(
        rtmp: str, http: str, hls_dir: Path, run_dir: Path, config_path: Path | None
    ) -> None:
        """Print the media server's nginx.conf: RTMP in from boxes, HLS out to viewers (each
        fetch checked with the collector), the collector's pages behind the same address.

        Example: shian-cloud live nginx-config --rtmp 0.0.0.0:1935 > /etc/shian/media.conf
        """
        from cloud.live.nginx import config

        web = get_config(config_path).web
        click.echo(
            config(
                rtmp_listen=rtmp,
                http_listen=http,
                collector=f"{web.host}:{web.port}",
                hls_dir=hls_dir,
                run_dir=run_dir,
            ),
            nl=False,
        )
