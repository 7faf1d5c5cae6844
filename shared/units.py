"""systemd units from the templates in ``systemd/``, with this install's paths filled in."""

from __future__ import annotations

from pathlib import Path

UNITS = Path(__file__).resolve().parent.parent / "systemd"


def render_unit(
    name: str, executable: str = "", config: str = "", user: str = "shian", **extra: str
) -> str:
    """The unit ``name`` with ``@EXECUTABLE@``, ``@CONFIG@``, ``@USER@`` and any ``@KEY@`` of
    ``extra`` (as ``key=value``) replaced."""
    text = (UNITS / name).read_text()
    values = {"EXECUTABLE": executable, "CONFIG": config, "USER": user}
    values.update({k.upper(): v for k, v in extra.items()})
    for key, value in values.items():
        if "\n" in value:
            raise ValueError(f"{key.lower()} {value!r} would break the unit file")
        text = text.replace(f"@{key}@", value)
    return text
