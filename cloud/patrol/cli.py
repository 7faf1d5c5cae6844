"""``shian-cloud patrols``: give patrols out, list them, read a visit's report, check the
checklists (docs/patrol.md). The inspectors themselves work at ``/patrol`` on their phones."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from shared.clikit import Decorator, json_option, print_rows


def register(
    main: click.Group,
    config_option: Decorator,
    get_config: Callable[..., Any],
    get_store: Callable[..., Any],
) -> None:
    def templates(config_path: Path | None) -> dict[str, Any]:
        """The shipped checklists and the operator's (checked when the config loads)."""
        from cloud.patrol import checklists

        return checklists.load(get_config(config_path).console.checklists_dir)

    def patrols_of(config_path: Path | None) -> Any:
        from cloud.patrol.tasks import Patrols

        return Patrols(get_store(config_path), templates(config_path))

    @main.group()
    def patrols() -> None:
        """Patrols (巡查): tasks for inspectors or service firms, their reports (docs/patrol.md).

        Example: shian-cloud patrols assign canteen-001 --inspector zhao --due 2026-12-03
        """

    @patrols.command("assign")
    @click.argument("site")
    @click.option("--inspector", default="", help="The inspector who visits.")
    @click.option("--firm", default="", help="Or a service firm: any of its inspectors visits.")
    @click.option("--due", required=True, help="The day it is due by (YYYY-MM-DD, China time).")
    @click.option("--checklist", default="", help="A checklist by id (default: the site's kind).")
    @config_option
    def patrols_assign(
        site: str, inspector: str, firm: str, due: str, checklist: str, config_path: Path | None
    ) -> None:
        """Give a patrol of SITE to an inspector or a service firm, as the city's operator.

        Example: shian-cloud patrols assign canteen-001 --inspector zhao --due 2026-12-03
        """
        from cloud.patrol.routes import due_date
        from cloud.patrol.tasks import OPERATOR

        try:
            task = patrols_of(config_path).assign(
                OPERATOR, site, due_date(due), time.time(), inspector, firm, checklist
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(task)

    @patrols.command("list")
    @config_option
    @json_option
    def patrols_list(config_path: Path | None, as_json: bool) -> None:
        """Every patrol, the unfinished first.

        Example: shian-cloud patrols list --json
        """
        from cloud.console.pages import when
        from cloud.patrol.tasks import OPERATOR

        rows = [{**t, "due_by": when(t["due"])}
                for t in patrols_of(config_path).tasks(OPERATOR, limit=100_000)]  # fmt: skip
        cols = ["id", "site", "district", "checklist", "inspector", "firm", "due_by", "state"]
        print_rows(rows, cols, as_json)

    @patrols.command("report")
    @click.argument("task")
    @config_option
    def patrols_report(task: str, config_path: Path | None) -> None:
        """A visit's report as JSON: each item's result, note and photos, and its hazard.

        Example: shian-cloud patrols report 019ad2c4-5b1e-7a30-9c4f-3e2d1b0a9f88
        """
        from cloud.patrol.tasks import OPERATOR

        t = patrols_of(config_path).task(OPERATOR, task)
        if t is None or t["checklist_of"] is None:
            raise click.ClickException(f"no patrol {task}")
        items = [
            {
                "item": i["item"].id,
                "check": i["item"].zh,
                "result": (i["result"] or {}).get("result"),
                "note": (i["result"] or {}).get("note", ""),
                "photos": (i["result"] or {}).get("photos", []),
                "hazard": {"id": i["hazard"]["id"], "state": i["hazard"]["state"]}
                if i["hazard"]
                else None,
            }
            for i in t["items"]
        ]
        keep = ("id", "site", "district", "checklist", "inspector", "firm", "due", "state",
                "started", "finished", "finished_by", "assigned_by")  # fmt: skip
        click.echo(json.dumps({**{k: t[k] for k in keep}, "items": items}, ensure_ascii=False))

    @patrols.command("checklists")
    @config_option
    def patrols_checklists(config_path: Path | None) -> None:
        """The checklist templates (the shipped ones and yours), checked; one line each.

        Example: shian-cloud patrols checklists
        """
        for c in templates(config_path).values():  # no database needed
            click.echo(f"{c.id}: {c.zh} / {c.en} ({len(c.items)} items; {', '.join(c.kinds)})")
