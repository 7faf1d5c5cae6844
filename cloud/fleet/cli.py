"""``shian-cloud fleet``: push updates to boxes over the air, and see how they went."""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import click

from shared.clikit import Decorator, json_option, print_rows
from shared.updates import Kind, SoftwareUpdate

WHEEL = re.compile(r"^shian-([0-9][0-9A-Za-z.+]*)-py3-none-any\.whl$")


def _stages(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r}: per cents, e.g. 10,50,100") from None


def _targets(store: Any, device: tuple[str, ...], site: str, district: str, role: str) -> list[str]:
    boxes = [i for i in store.registry.active("device") if not role or i.role == role]
    if device:
        names = {i.name for i in boxes}
        if unknown := [d for d in device if d not in names]:
            raise click.ClickException(f"not registered (or not a {role or 'box'}): {unknown}")
        return list(device)
    return [
        i.name
        for i in boxes
        if (not site or i.site == site) and (not district or i.district == district)
    ]


def _model(files: Any, profile_path: Path, model_file: Path, labels: Path | None) -> dict[str, Any]:
    from edge.vision.models import load_model_profile

    profile = load_model_profile(str(profile_path))
    refs = [files.add(model_file, profile.file).model_dump()]
    if profile.labels_file:
        if labels is None:
            raise click.BadParameter("the profile names a labels file: give --labels")
        refs.append(files.add(labels, profile.labels_file).model_dump())
    return {"name": profile_path.stem, "profile": profile_path.read_text(), "files": refs}


def register(
    main: click.Group,
    config_option: Decorator,
    get_config: Callable[..., Any],
    get_store: Callable[..., Any],
) -> None:
    @main.group()
    def fleet() -> None:
        """Over-the-air updates: config, models and software for boxes (docs/fleet.md).

        Example: shian-cloud fleet push --config-patch rule.toml --site canteen-001
        """

    @fleet.command("key")
    @config_option
    def fleet_key(config_path: Path | None) -> None:
        """Print the fleet's public key (made if there is none; boxes get it in their
        bundles).

        Example: shian-cloud fleet key
        """
        from cloud.fleet.keys import FleetKey

        click.echo(FleetKey(get_config(config_path).data_dir / "fleet").public_b64(create=True))

    @fleet.command("push")
    @config_option
    @click.option(
        "--config-patch",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A TOML file of the config keys to change (laid over the box's).",
    )
    @click.option(
        "--model",
        "model_profile",
        help="A model profile (TOML file) to install.",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )
    @click.option(
        "--model-file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="With --model: the model file.",
    )
    @click.option(
        "--labels",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="With --model: its labels file, if it has one.",
    )
    @click.option(
        "--software",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="A release: the shian wheel (shian-VERSION-py3-none-any.whl).",
    )
    @click.option("--device", multiple=True, help="A box (repeat for more).")
    @click.option("--site", default="", help="Every box of a site.")
    @click.option("--district", default="", help="Every box of a district.")
    @click.option("--all", "everyone", is_flag=True, help="Every box.")
    @click.option(
        "--stages",
        default="100",
        show_default=True,
        help="Cumulative per cents of the boxes each stage reaches, e.g. 5,25,100.",
    )
    @click.option("--health-s", type=float, help="How long a box must stay healthy on it.")
    @click.option("--max-failures", type=int, help="Rollbacks that halt the rollout (more than).")
    def fleet_push(
        config_path: Path | None,
        config_patch: Path | None,
        model_profile: Path | None,
        model_file: Path | None,
        labels: Path | None,
        software: Path | None,
        device: tuple[str, ...],
        site: str,
        district: str,
        everyone: bool,
        stages: str,
        health_s: float | None,
        max_failures: int | None,
    ) -> None:
        """Send one update to boxes, in stages: a box rolls it back by itself if it is not
        healthy on it, and too many rollbacks halt the rollout.

        Example: shian-cloud fleet push --software shian-0.2.0-py3-none-any.whl --all --stages 5,100
        """
        from cloud.fleet.keys import FileStore
        from cloud.fleet.rollouts import Rollouts

        kinds = [
            k
            for k, v in (("config", config_patch), ("model", model_profile), ("software", software))
            if v is not None
        ]
        if len(kinds) != 1:
            raise click.UsageError("give one of --config-patch, --model, --software")
        if not (device or site or district or everyone):
            raise click.UsageError("give --device, --site, --district or --all")
        cfg = get_config(config_path)
        store = get_store(config_path)
        files = FileStore(cfg.data_dir / "fleet")
        kind = cast(Kind, kinds[0])
        try:
            if config_patch is not None:
                part: dict[str, Any] = tomllib.loads(config_patch.read_text(encoding="utf-8"))
            elif model_profile is not None:
                if model_file is None:
                    raise click.UsageError("--model needs --model-file")
                part = _model(files, model_profile, model_file, labels)
            else:
                assert software is not None
                m = WHEEL.match(software.name)
                if m is None:
                    raise click.BadParameter(f"{software.name} is not a shian wheel")
                SoftwareUpdate.model_validate(  # its version checked before its file is kept
                    {"version": m.group(1), "wheel": {"name": software.name, "sha256": "0" * 64,
                                                      "size": 0}}
                )  # fmt: skip
                part = {"version": m.group(1), "wheel": files.add(software).model_dump()}
        except (tomllib.TOMLDecodeError, FileNotFoundError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        targets = _targets(store, device, site, district, "kitchen" if kind == "model" else "")
        fleet_ = Rollouts(cfg)
        try:
            rid = store.in_transaction(
                lambda conn: fleet_.create(
                    conn, kind, part, targets, _stages(stages), time.time(), health_s, max_failures
                )
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"rollout {rid}: {kind} for {len(targets)} boxes, stages {stages}")

    @fleet.command("halt")
    @click.argument("rollout")
    @config_option
    def fleet_halt(rollout: str, config_path: Path | None) -> None:
        """Stop a rollout: boxes that have not taken its update yet will not.

        Example: shian-cloud fleet halt 28c9e1cf4cac44bba276cee72bc68b29
        """
        from cloud.fleet.rollouts import Rollouts

        store = get_store(config_path)
        fleet_ = Rollouts(get_config(config_path))
        try:
            store.in_transaction(
                lambda conn: fleet_.halt(conn, rollout, "halted by hand", time.time())
            )
        except ValueError:
            raise click.ClickException(f"no rollout {rollout}") from None
        click.echo(f"rollout {rollout}: halted")

    @fleet.command("status")
    @config_option
    @json_option
    def fleet_status(config_path: Path | None, as_json: bool) -> None:
        """Each box's version and last update, then the rollouts.

        Example: shian-cloud fleet status
        """
        store = get_store(config_path)
        print_rows(
            fleet_boxes(store), ["device", "version", "n", "kind", "state", "detail"], as_json
        )
        if not as_json:
            click.echo("")
            rows = store.db.query(
                "SELECT id, kind, state, stage, stages, note FROM fleet_rollouts ORDER BY created"
            )
            print_rows(rows, ["id", "kind", "state", "stage", "stages", "note"], False)


def fleet_boxes(store: Any) -> list[dict[str, Any]]:
    """Per box: the version it last reported (in its last status, or an update's outcome,
    whichever came later) and its latest update."""
    latest = {
        r["device"]: r
        for r in store.db.query(
            "SELECT device, n, kind, state, detail, version, updated FROM fleet_updates ORDER BY n"
        )
    }
    started = {
        r["device"]: (json.loads(r["last_status"] or "{}").get("version", ""),
                      r["status_received"] or 0)
        for r in store.db.query("SELECT device, last_status, status_received FROM devices")
    }  # fmt: skip
    rows = []
    for ident in store.registry.active("device"):
        u = dict(latest.get(ident.name, {}))
        at = u.pop("updated", 0)
        version, since = started.get(ident.name, ("", 0))
        if u.get("version") and at >= since:
            version = u["version"]
        rows.append({"device": ident.name, **u, "version": version})
    return rows
