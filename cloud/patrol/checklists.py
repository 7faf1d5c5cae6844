"""Checklist templates as data: one TOML file per kind of visit (``checklists/*.toml`` in the
package, and an operator's own in ``[patrol] checklists_dir``, which may replace one by id).
A file that does not check is refused with the reason; nothing half-loaded is used."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.codec import first_error
from shared.topics import check_name


class ChecklistError(ValueError):
    """A template that does not check: the file and why."""


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The item's name within its checklist (a name: letters, _).")
    zh: str = Field(min_length=1, max_length=200, description="What is checked, in Chinese.")
    en: str = Field(min_length=1, max_length=200, description="The same, in English.")
    severity: Literal["critical", "major", "minor"] = Field(
        description="The hazard's severity when the item fails."
    )
    due_h: float = Field(
        ge=1, le=720, description="The business's default time to rectify, in hours."
    )

    @field_validator("id")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "item")


class Checklist(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The template's name.")
    zh: str = Field(min_length=1, max_length=100)
    en: str = Field(min_length=1, max_length=100)
    kinds: list[str] = Field(description="The kinds of site it is for (sites describe).")
    items: list[Item] = Field(min_length=1, max_length=100)

    @field_validator("id")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v, "checklist")

    @field_validator("items")
    @classmethod
    def _unique(cls, items: list[Item]) -> list[Item]:
        ids = [i.id for i in items]
        if len(set(ids)) != len(ids):
            raise ValueError("two items with one id")
        return items

    def item(self, item_id: str) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)


def parse(text: str, where: str) -> Checklist:
    try:
        return Checklist.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ChecklistError(f"{where}: not TOML: {exc}") from None
    except ValidationError as exc:
        raise ChecklistError(f"{where}: {first_error(exc)}") from None


def load(folder: Path | None = None) -> dict[str, Checklist]:
    """The package's templates, then ``folder``'s (which replace those of the same id)."""
    found: dict[str, Checklist] = {}
    for f in sorted(resources.files("cloud.patrol").joinpath("checklists").iterdir(),
                    key=lambda f: f.name):  # fmt: skip
        if f.name.endswith(".toml"):
            c = parse(f.read_text(encoding="utf-8"), f"checklists/{f.name}")
            found[c.id] = c
    if folder is not None:
        for path in sorted(folder.glob("*.toml")):
            c = parse(path.read_text(encoding="utf-8"), str(path))
            found[c.id] = c
    return found


def for_kind(checklists: dict[str, Checklist], kind: str) -> Checklist | None:
    """The template for a kind of site (the first by id that names it)."""
    return next((c for _, c in sorted(checklists.items()) if kind in c.kinds), None)
