"""What the box keeps of its updates, in ``<data_dir>/updates/``, each file written whole
(a temporary file, fsynced, renamed) so a power cut leaves the old one or the new one.

- ``staged.json``: an update checked and fetched, to be applied at the next start;
- ``trial.json``: the update applied, with what it replaced and how often the agent started
  on it; gone once the agent was healthy for the update's set time;
- ``report.json``: outcomes the agent has yet to send (it records them in the database's
  ``updates`` table with the event, so one sent twice is recognised).

The config the cloud changed is ``<data_dir>/fleet.toml``, laid over the installer's config;
software releases live in ``<data_dir>/releases/<version>``, ``current`` links the one in use.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from shared.secretfiles import write_secret


class UpdateState:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.dir = data_dir / "updates"
        self.overlay = data_dir / "fleet.toml"
        self.releases = data_dir / "releases"

    def _read(self, name: str) -> Any:
        try:
            return json.loads((self.dir / name).read_text())
        except FileNotFoundError:
            return None

    def _write(self, name: str, value: Any) -> None:
        if value is None:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / name).unlink()
            return
        write_secret(self.dir / name, json.dumps(value, ensure_ascii=False))

    def staged(self) -> dict[str, Any] | None:
        return self._read("staged.json")  # type: ignore[no-any-return]

    def set_staged(self, value: dict[str, Any] | None) -> None:
        self._write("staged.json", value)

    def trial(self) -> dict[str, Any] | None:
        return self._read("trial.json")  # type: ignore[no-any-return]

    def set_trial(self, value: dict[str, Any] | None) -> None:
        self._write("trial.json", value)

    def reports(self) -> list[dict[str, Any]]:
        return self._read("report.json") or []

    def add_report(self, outcome: dict[str, Any]) -> None:
        self._write("report.json", [*self.reports(), outcome])

    def clear_reports(self, sent: list[dict[str, Any]]) -> None:
        left = [r for r in self.reports() if r not in sent]
        self._write("report.json", left or None)

    # -- what is in use -------------------------------------------------------------------
    def overlay_text(self) -> str | None:
        try:
            return self.overlay.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def set_overlay(self, text: str | None) -> None:
        if text is None:
            with contextlib.suppress(FileNotFoundError):
                self.overlay.unlink()
        else:
            write_secret(self.overlay, text)

    def release(self) -> str | None:
        """The release in use (a folder of ``releases/``), or None: the installed package."""
        link = self.releases / "current"
        return os.readlink(link) if link.is_symlink() else None

    def set_release(self, name: str | None) -> None:
        link = self.releases / "current"
        if name is None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            return
        self.releases.mkdir(parents=True, exist_ok=True)
        tmp = self.releases / ".current.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(name)
        os.replace(tmp, link)  # atomic: the old release or the new one, never neither
