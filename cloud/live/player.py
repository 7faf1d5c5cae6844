"""The viewers' HLS player: hls.js (Apache-2.0), installed from the npm registry by the
operator's set-up (``shian-cloud live player``), checked by its sha256, served by the collector
at ``/live/player.js``. Never a CDN: the page loads nothing from elsewhere."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from shared.fetch import FetchError, SourceSpec, cut, fetch_package
from shared.secretfiles import write_secret

PLAYER_FILE = "hls.light.min.js"
SOURCE = SourceSpec(npm="hls.js@1.7.4", member="package/dist/hls.light.min.js")
SHA256 = "482cccb3a224554f64d8c2cf0d335dba4a3819bdb726afbfddfe15de4c277d82"


def installed(player_dir: Path) -> bool:
    path = player_dir / PLAYER_FILE
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == SHA256


def install(player_dir: Path) -> Path:
    """Fetch the player into ``player_dir`` (nothing when the right file is there)."""
    path = player_dir / PLAYER_FILE
    if installed(player_dir):
        return path
    with tempfile.TemporaryDirectory() as tmp:
        data = cut(fetch_package(SOURCE, Path(tmp)), SOURCE)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise FetchError(f"{SOURCE.npm} {SOURCE.member}: sha256 {digest}, expected {SHA256}")
    player_dir.mkdir(parents=True, exist_ok=True)
    write_secret(path, data, 0o644)  # public: a script every viewer loads
    return path
