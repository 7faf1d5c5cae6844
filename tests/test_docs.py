"""The docs stay true: generated config reference, protocol examples, README's two commands."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from shared.alerts import AlertMessage, Reply, SupervisorCommand
from shared.catalog import CatalogMessage
from shared.codec import decode_batch
from shared.configdoc import render_all
from shared.kinds import KINDS
from shared.models import Ack, Status

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
EXAMPLES = re.findall(r"<!-- example: ([\w ]+) -->\s*```json\n(.*?)```", PROTOCOL, re.S)


def test_config_reference_is_generated_from_the_models() -> None:
    assert (ROOT / "docs" / "config.md").read_text() == render_all(), "run `make docs`"


@pytest.mark.parametrize(("name", "body"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_protocol_examples_are_valid(name: str, body: str) -> None:
    if name == "events":
        out = decode_batch(body.encode(), "kitchen-1")
        assert out.events and not out.rejected
    elif name == "status":
        Status.model_validate_json(body)
    elif name == "ack":
        Ack.model_validate_json(body)
    elif name == "catalog":
        CatalogMessage.model_validate_json(body)
    elif name == "alert":
        AlertMessage.model_validate_json(body)
    elif name == "supervisor command":
        SupervisorCommand.model_validate_json(body)
    elif name == "reply":
        Reply.model_validate_json(body)
    else:
        kind = name.removeprefix("kind ")
        KINDS[kind].model_validate(json.loads(body))


def test_every_kind_has_an_example() -> None:
    documented = {n.removeprefix("kind ") for n, _ in EXAMPLES if n.startswith("kind ")}
    assert documented == set(KINDS)


def test_readme_leads_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert first_block is not None
    commands = [ln.split("#")[0].strip() for ln in first_block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]
    assert readme.index("```sh") < 200


def test_every_installing_command_exists() -> None:
    """docs/installing.md: each shian-edge / shian-cloud command resolves to a real command
    whose options parse (the flow itself runs in tests/real/test_provisioning.py)."""
    import shlex

    from click.testing import CliRunner

    from cloud.cli import main as cloud_main
    from edge.cli import main as edge_main

    text = (ROOT / "docs" / "installing.md").read_text().replace("\\\n", " ")
    lines = [
        ln.strip()
        for block in re.findall(r"```sh\n(.*?)```", text, re.S)
        for ln in block.splitlines()
    ]
    # as the installer types them, with or without sudo
    lines = [ln.removeprefix("sudo -u shian ").removeprefix("sudo ") for ln in lines]
    commands = [ln.split("#")[0].strip() for ln in lines if ln.startswith("shian-")]
    assert len(commands) >= 15
    for line in commands:
        argv = shlex.split(line)
        main = edge_main if argv[0] == "shian-edge" else cloud_main
        words = []
        group = main
        for word in argv[1:]:  # walk down the command groups
            if word.startswith("-") or not hasattr(group, "commands") or word not in group.commands:
                break
            group = group.commands[word]
            words.append(word)
        assert words, f"{line}: no such command"
        r = CliRunner().invoke(main, [*words, "--help"])
        assert r.exit_code == 0, line
        opts = {o for p in group.params for o in [*p.opts, *getattr(p, "secondary_opts", [])]}
        for word in argv[1:]:
            if word.startswith("--"):
                assert word in opts, f"{line}: {word} is not an option of {' '.join(words)}"


TOML_BLOCKS = [
    (doc.name, i, block)
    for doc in sorted((ROOT / "docs").glob("*.md"))
    if doc.name != "config.md"
    for i, block in enumerate(re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S))
]


def _unknown_keys(model: type[BaseModel], data: dict[str, Any], at: str = "") -> list[str]:
    """Keys of a config snippet that ``model`` does not have (snippets are partial, so only
    names are checked, not whether the snippet is complete)."""
    out = []
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            out.append(f"{at}{key}")
            continue
        sub = _model_of(field.annotation)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if sub is not None and isinstance(item, dict):
                out += _unknown_keys(sub, item, f"{at}{key}.")
    return out


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


@pytest.mark.parametrize(
    ("doc", "n", "block"), TOML_BLOCKS, ids=[f"{d}#{n}" for d, n, _ in TOML_BLOCKS]
)
def test_config_snippets_in_the_docs_use_only_real_keys(doc: str, n: int, block: str) -> None:
    from cloud.config import CloudConfig
    from cloud.patrol.checklists import Checklist
    from edge.config import EdgeConfig
    from edge.stall.profiles import ScaleProfile
    from edge.vision.models import ModelProfile

    data = tomllib.loads(block)
    models = (EdgeConfig, CloudConfig, ScaleProfile, ModelProfile, Checklist)
    wrong = [_unknown_keys(m, data) for m in models]
    assert not all(wrong), f"{doc}, block {n}: unknown keys {min(wrong, key=len)}"
