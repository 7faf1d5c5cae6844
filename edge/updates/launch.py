"""What ``shian-edge run`` does before the agent starts: apply a staged update, or roll back
one the agent did not stay healthy on, then start the release in use.

A trial that is still there at a start means the agent that ran on the update stopped
before it was healthy for the update's set time (it crashed, hung until systemd's watchdog
killed it, failed its checks and exited, or the box lost power): the update is rolled back
(the previous ``fleet.toml`` and release put back) and reported. This runs from the
installed package, never from a release, so a release that cannot even start is still
rolled back. ``run`` then starts the release in use (``exec``: the same process, so
systemd's notify and watchdog follow it).
"""

from __future__ import annotations

import logging
import os
import site
import sys
from pathlib import Path

from edge.updates.receive import outcome
from edge.updates.state import UpdateState

log = logging.getLogger("shian.updates")

RESTART = 75
"""The agent's exit code when it stops to apply an update (EX_TEMPFAIL): systemd's
``Restart=always`` starts it again."""
RELEASE_ENV = "SHIAN_RELEASE"
"""Set in a release's process: it was started by ``run``, which has done the above."""


def prepare(data_dir: Path) -> str:
    """Roll back a failed trial, or apply a staged update; returns what it did."""
    st = UpdateState(data_dir)
    trial = st.trial()
    if trial is not None and trial.get("committed"):  # healthy, its report not yet sent
        st.add_report(outcome(trial["update"], "applied", "healthy for its set time"))
        st.set_trial(None)
        trial = None
    if trial is not None:
        staged = st.staged()
        if staged is not None and staged["update"]["id"] == trial["update"]["id"]:
            st.set_staged(None)  # a power cut inside the last start: applied, not cleared
        previous = trial["previous"]
        st.set_overlay(previous["overlay"])
        st.set_release(previous["release"])
        st.add_report(
            outcome(
                trial["update"],
                "rolled_back",
                "the agent stopped before it had been healthy for "
                f"{trial['update']['health_s']:g} s on the update",
            )
        )
        st.set_trial(None)
        log.error("update %s rolled back", trial["update"]["id"])
        return "rolled back"
    staged = st.staged()
    if staged is None:
        return ""
    previous = {"overlay": st.overlay_text(), "release": st.release()}
    st.set_trial({"update": staged["update"], "previous": previous})  # before any switch
    if "overlay" in staged:
        st.set_overlay(staged["overlay"])
    if "release" in staged:
        st.set_release(staged["release"])
    st.set_staged(None)
    log.info("update %s applied; on trial", staged["update"]["id"])
    return "applied"


def exec_release(data_dir: Path, args: list[str]) -> None:
    """Start ``edge run args`` from the release in use, if there is one (does not return)."""
    st = UpdateState(data_dir)
    release = st.release()
    if release is None or os.environ.get(RELEASE_ENV):
        return
    folder = st.releases / release
    # -S: no site-packages .pth files (an editable install would shadow the release);
    # -P: not the working directory first. The installed dependencies stay on the path.
    paths = [str(folder), *site.getsitepackages()]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), RELEASE_ENV: release}
    log.info("starting release %s", release)
    os.execve(sys.executable, [sys.executable, "-S", "-P", "-m", "edge", *args], env)
