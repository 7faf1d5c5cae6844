"""Taking an update from the cloud: check it, fetch its files, stage it, restart to apply.

Runs in a thread of its own: downloads must not hold up the sync loop that hands it the
message. An update is refused (an ``update`` event saying why) when it is not signed by the
fleet key, not for this box, or brings a file or a config that does not check; one not newer
than the last this box handled is ignored (the same retained message comes again after every
reconnect). A staged update is applied by the next start (``edge.updates.launch``): the agent
asks to be restarted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge import __version__
from edge.config import EdgeConfig
from edge.store.outbox import Outbox
from edge.updates.overlay import patched
from edge.updates.state import UpdateState
from shared.codec import CodecError, loads
from shared.updates import FileRef, SoftwareUpdate, Update, UpdateRefused, public_key, verify

log = logging.getLogger("shian.updates")


def outcome(update: dict[str, Any], what: str, detail: str = "") -> dict[str, Any]:
    """An ``update`` event's data for ``update`` (as stored: its JSON form)."""
    return {
        "update": update["id"],
        "rollout": update.get("rollout", ""),
        "n": update["n"],
        "kind": update["kind"],
        "outcome": what,
        "detail": detail[:1000],
        "version": __version__,
    }


class FetchFailed(UpdateRefused):
    """The network failed, not the update: it is tried again later."""


RETRIES_S = (5.0, 15.0, 60.0, 300.0)
"""Waits before each new try of an update whose files could not be fetched."""


class Updater:
    def __init__(
        self,
        cfg: EdgeConfig,
        config_path: Path | None,
        outbox: Outbox,
        restart: Callable[[], None],
    ) -> None:
        self.cfg, self.config_path, self.outbox, self.restart = cfg, config_path, outbox, restart
        self.state = UpdateState(cfg.data_dir)
        self._q: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._seen_forged: set[str] = set()
        self._tries: dict[str, int] = {}
        self.settled = threading.Event()
        """Set while no update is on trial: one that comes meanwhile waits for the trial's end
        (staging it would restart the agent, and so roll the trial back)."""
        if self.state.trial() is None:
            self.settled.set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="shian-updates", daemon=True)

    # -- the thread ---------------------------------------------------------------------------
    def on_command(self, _rest: str, payload: bytes) -> None:
        self._q.put(payload)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._q.put(None)
        self._thread.join(5)

    def _run(self) -> None:
        while (payload := self._q.get()) is not None:
            while not self.settled.wait(0.5):
                if self._stopping.is_set():
                    return
            try:
                self.take(payload)
            except Exception:  # never let an update stop the box
                log.exception("update failed")

    # -- one update ---------------------------------------------------------------------------
    def take(self, payload: bytes) -> str:
        """``staged``, ``refused``, ``retrying`` (a download failed) or ``ignored``."""
        if not payload:
            return "ignored"  # withdrawn (a halted rollout)
        try:
            if not self.cfg.fleet.public_key:
                raise UpdateRefused("this box has no fleet key ([fleet] public_key)")
            update = verify(public_key(self.cfg.fleet.public_key), payload, self.cfg.device)
        except UpdateRefused as exc:
            digest = hashlib.sha256(payload).hexdigest()
            if digest not in self._seen_forged:  # once per message, not once per reconnect
                self._seen_forged.add(digest)
                log.warning("update refused: %s", exc)
                self.outbox.enqueue("update", self._unverified(payload, str(exc)))
            return "refused"
        if update.n <= self.last_n() or self.state.staged() is not None:
            return "ignored"  # handled already, or one is staged: it comes again after restart
        doc = update.model_dump(mode="json")
        try:
            staged = self.stage(update)
        except FetchFailed as exc:
            tries = self._tries.get(update.id, 0)
            if tries < len(RETRIES_S):
                self._tries[update.id] = tries + 1
                log.warning("update %s: %s; trying again in %g s", update.id, exc, RETRIES_S[tries])
                timer = threading.Timer(RETRIES_S[tries], self._q.put, [payload])
                timer.daemon = True
                timer.start()
                return "retrying"
            self.record(outcome(doc, "refused", str(exc)))
            return "refused"
        except (UpdateRefused, ValueError, OSError, subprocess.CalledProcessError) as exc:
            log.warning("update %s refused: %s", update.id, exc)
            self.record(outcome(doc, "refused", str(exc)))
            return "refused"
        self.state.set_staged({"update": doc, **staged})
        self.record(None, doc)
        log.info("update %s (%s) staged; restarting to apply it", update.id, update.kind)
        self.restart()
        return "staged"

    def last_n(self) -> int:
        rows = self.outbox.read("SELECT max(n) FROM updates")
        return int(rows[0][0] or 0)

    def record(self, event: dict[str, Any] | None, staged: dict[str, Any] | None = None) -> None:
        """An outcome event and its row in one transaction (or only the row of a staging)."""
        row = event or outcome(staged or {}, "staged")
        values = (row["update"], row["n"], row["kind"], row["outcome"], row["detail"])

        def also(conn: Any, _queued: Any) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO updates VALUES (?, ?, ?, ?, ?, ?)",
                (*values, self.outbox.clock()),
            )

        if event is None:
            with self.outbox.transaction() as conn:
                also(conn, None)
        else:
            self.outbox.enqueue_many([("update", event, None)], also=also)

    @staticmethod
    def _unverified(payload: bytes, why: str) -> dict[str, Any]:
        """What may be said of an update that failed its checks: the id and kind it claims
        when they are well formed (for the operator to find it), never trusted further."""
        base: dict[str, Any] = {"id": "0" * 32, "n": 0, "kind": "config"}
        with contextlib.suppress(CodecError, TypeError, KeyError, AttributeError):
            claimed = loads(payload)["update"]
            if re.fullmatch(r"[0-9a-f]{32}", str(claimed.get("id"))):
                base["id"] = claimed["id"]
            if claimed.get("kind") in ("config", "model", "software"):
                base["kind"] = claimed["kind"]
        return outcome(base, "refused", why)

    # -- staging --------------------------------------------------------------------------
    def stage(self, update: Update) -> dict[str, Any]:
        work = self.state.dir / update.id
        shutil.rmtree(work, ignore_errors=True)
        files = {f.name: self.fetch(update.files_url, f, work) for f in update.files()}
        if update.config is not None:
            return {"overlay": self._patched(update.config)}
        if update.model is not None:
            return {"overlay": self._model(update, files)}
        assert update.software is not None
        return {"release": self._release(update.software, files[update.software.wheel.name])}

    def _patched(self, patch: dict[str, Any]) -> str:
        if self.config_path is None:
            raise UpdateRefused("this agent was started without a config file to patch")
        return patched(self.config_path, self.state.overlay_text(), patch)

    def _model(self, update: Update, files: dict[str, Path]) -> str:
        from edge.vision.models import load_model_profile, sha256_of

        assert update.model is not None
        if self.cfg.kitchen is None:
            raise UpdateRefused("a model update for a box with no kitchen")
        folder = self.cfg.data_dir / "fleet" / "models" / update.id
        folder.mkdir(parents=True, exist_ok=True)
        for name, path in files.items():
            os.replace(path, folder / name)
        profile_path = folder / f"{update.model.name}.toml"
        profile_path.write_text(update.model.profile, encoding="utf-8")
        profile = load_model_profile(str(profile_path))
        wanted: list[tuple[str | None, str | None]] = [
            (profile.file, profile.sha256),
            (profile.labels_file, profile.labels_sha256),
        ]
        for needed, want in wanted:
            if needed is None:
                continue
            if not (folder / needed).is_file():
                raise UpdateRefused(f"the update brings no {needed}, which its profile names")
            if want and sha256_of(folder / needed) != want:
                raise UpdateRefused(f"{needed} is not the file its profile names (sha256)")
        return self._patched({"kitchen": {"model": str(profile_path), "models_dir": str(folder)}})

    def _release(self, software: SoftwareUpdate, wheel: Path) -> str:
        """The release's wheel installed beside the others (its own dependencies are the
        installed package's: a release that needs new ones comes as a package)."""
        # named by its wheel too: a release rebuilt under the same version is another one
        name = f"{software.version}-{software.wheel.sha256[:12]}"  # checked when fetched
        target = self.state.releases / name
        if not target.is_dir():
            part = self.state.releases / f".{name}.part"
            shutil.rmtree(part, ignore_errors=True)
            pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index"]
            subprocess.run(
                [*pip, "--no-cache-dir", "--quiet", "--target", str(part), str(wheel)],
                check=True,
                capture_output=True,
                timeout=300,
            )
            os.replace(part, target)
        return name

    def fetch(self, base: str, ref: FileRef, work: Path) -> Path:
        """``{base}/{sha256}`` into ``work``, no larger than it says and checked by sha256."""
        cap = min(ref.size, int(self.cfg.fleet.max_download_mb * 2**20))
        if ref.size > cap:
            raise UpdateRefused(f"{ref.name}: {ref.size} bytes is more than this box takes")
        work.mkdir(parents=True, exist_ok=True)
        dest, h, got = work / ref.name, hashlib.sha256(), 0
        try:
            url = f"{base.rstrip('/')}/{ref.sha256}"
            with urllib.request.urlopen(url, timeout=60) as r, dest.open("wb") as f:
                while block := r.read(1 << 16):
                    got += len(block)
                    if got > cap:
                        raise UpdateRefused(f"{ref.name}: longer than its {ref.size} bytes")
                    h.update(block)
                    f.write(block)
        except OSError as exc:
            raise FetchFailed(f"cannot fetch {ref.name}: {exc}") from None
        if h.hexdigest() != ref.sha256:
            raise UpdateRefused(f"{ref.name}: its sha256 is not the update's")
        return dest
