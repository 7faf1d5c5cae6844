"""``shian-cloud ledger``: trace a batch through the kitchens' purchase ledgers, and recall it
(docs/ledger.md)."""

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
    @main.group()
    def ledger() -> None:
        """The kitchens' purchase ledgers: where a batch went, and its recall.

        Example: shian-cloud ledger trace HX20261125-03 --stall stall-7
        """

    @ledger.command("trace")
    @click.argument("batch")
    @click.option("--stall", default="", help="The stall (its box) that sold the batch.")
    @config_option
    @json_option
    def ledger_trace(batch: str, stall: str, config_path: Path | None, as_json: bool) -> None:
        """Which kitchens took BATCH (from a stall), how much, when, and its use-by date.

        Example: shian-cloud ledger trace HX20261125-03 --stall stall-7
        """
        from cloud.purchases import trace

        rows = trace(get_store(config_path).db, batch, stall)
        cols = ["site", "district", "product", "quantity", "left_over", "unit", "stall",
                "ticket_state"]  # fmt: skip
        print_rows(rows, cols, as_json)

    @ledger.command("recall")
    @click.argument("batch")
    @click.option("--stall", required=True, help="The stall (its box) that sold the batch.")
    @click.option("--reason", required=True, help="Why: the failed test, in a line.")
    @config_option
    def ledger_recall(batch: str, stall: str, reason: str, config_path: Path | None) -> None:
        """Recall BATCH from every kitchen that took it: an alert per site, and its boxes told
        to stop using it within 4 hours (the running collector sends it).

        Example: shian-cloud ledger recall HX20261125-03 --stall stall-7 --reason "农残超标"
        """
        from cloud.purchases import recall

        store = get_store(config_path)
        try:
            ids = recall(store, batch, stall, reason[:120], "operator", time.time())
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(json.dumps({"batch": batch, "stall": stall, "alerts": ids}))
