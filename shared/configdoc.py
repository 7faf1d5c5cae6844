"""Render a config model as a Markdown reference (docs/config.md is generated from this)."""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def _models(annotation: Any) -> list[type[BaseModel]]:
    args = typing.get_args(annotation) or (annotation,)
    return [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]


def _type(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("pathlib.", "")
    text = text.replace("pydantic.types.", "").replace("<class '", "").replace("'>", "")
    return text.replace("Literal", "one of ").replace(" | ", " or ")


def _default(field: Any) -> str:
    if field.default is PydanticUndefined:
        return "required" if field.default_factory is None else "(table)"
    if field.default is None:
        return "none"
    return f"`{json.dumps(field.default, default=str)}`"


def render(model: type[BaseModel], title: str, intro: str) -> str:
    lines = [f"# {title}", "", intro, ""]

    def table(m: type[BaseModel], prefix: str) -> None:
        nested: list[tuple[str, type[BaseModel]]] = []
        rows = []
        for name, field in m.model_fields.items():
            subs = _models(field.annotation)
            if subs:
                many = typing.get_origin(field.annotation) is list
                nested.append((f"{prefix}{name}" + ("[]" if many else ""), subs[0]))
                continue
            rows.append(
                f"| `{name}` | {_type(field.annotation)} | {_default(field)} | "
                f"{field.description or ''} |"
            )
        name = prefix[:-1].replace("[]", "")
        many = prefix.endswith("[].")
        heading = (f"## `[[{name}]]`" if many else f"## `[{name}]`") if prefix else "## Top level"
        lines.extend([heading, "", (m.__doc__ or "").strip(), ""])
        if rows:
            lines.extend(["| key | type | default | meaning |", "|---|---|---|---|", *rows, ""])
        for sub_prefix, sub in nested:
            table(sub, sub_prefix + ".")

    table(model, "")
    return "\n".join(lines).rstrip() + "\n"


def render_all() -> str:
    from cloud.config import CloudConfig
    from edge.config import EdgeConfig

    edge = render(
        EdgeConfig,
        "Configuration reference",
        "Generated from the pydantic models by `make docs` (a test fails when it is stale).\n"
        "Both files are TOML; unknown keys are errors, and `shian-edge config validate` names "
        "the file, line and field of each problem.\n\n"
        "# Edge: `/etc/shian/edge.toml` (`shian-edge --config`, `$SHIAN_EDGE_CONFIG`)",
    )
    cloud = render(
        CloudConfig,
        "Cloud: `/etc/shian/cloud.toml` (`shian-cloud --config`, `$SHIAN_CLOUD_CONFIG`)",
        "Without a file the collector runs on its embedded defaults.",
    )
    return edge + "\n" + cloud


if __name__ == "__main__":
    print(render_all(), end="")
