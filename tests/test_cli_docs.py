"""Every command has help with an example (the sqlite-utils way: a test fails otherwise)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cloud.cli import main as cloud_main
from edge.cli import main as edge_main


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


CASES = [(edge_main, c) for c in commands(edge_main)] + [
    (cloud_main, c) for c in commands(cloud_main)
]


@pytest.mark.parametrize(
    ("root", "path"), CASES, ids=lambda v: " ".join(v) if isinstance(v, tuple) else v.name
)
def test_command_has_help_with_an_example(root: click.Group, path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(root, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output, f"{' '.join(path)} lacks an Example: in its help"
    cmd: click.Command = root
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = cmd.commands[name]
    assert cmd.help and len(cmd.help.split("\n")[0]) > 10
