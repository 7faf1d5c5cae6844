"""The fleet's signing key and the files boxes fetch.

The key (Ed25519) is made once, 0600, in ``<data_dir>/fleet/signing.key``; its public half
goes into every box's bundle. Files (models, releases) are kept by their sha256 in
``<data_dir>/fleet/files/``, served at ``/fleet/files/{sha256}`` by the collector's web
server: a box checks what it fetches against the signed update, so the files need no secret.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.updates import FileRef

SHA256 = re.compile(r"^[0-9a-f]{64}$")


class FleetKey:
    def __init__(self, fleet_dir: Path) -> None:
        self.path = fleet_dir / "signing.key"

    def private(self, create: bool = False) -> Ed25519PrivateKey:
        """The key. Made only when ``create`` (registering a box, ``fleet key``): one made
        anywhere else would replace a lost key silently, and every box would then refuse
        every update."""
        if create:
            self._create()
        try:
            raw = base64.b64decode(self.path.read_text().strip())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no fleet key at {self.path}: the boxes hold one that is not here; restore it "
                "from a backup (or make one with shian-cloud fleet key, then provision every "
                "box again)"
            ) from None
        return Ed25519PrivateKey.from_private_bytes(raw)

    def _create(self) -> None:
        """Once: a second process that races here keeps the first one's key."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(raw).decode() + "\n")
            f.flush()
            os.fsync(f.fileno())

    def public_b64(self, create: bool = False) -> str:
        raw = (
            self.private(create)
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )
        return base64.b64encode(raw).decode()


class FileStore:
    def __init__(self, fleet_dir: Path) -> None:
        self.dir = fleet_dir / "files"

    def add(self, src: Path, name: str = "") -> FileRef:
        h = hashlib.sha256()
        with src.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        digest = h.hexdigest()
        self.dir.mkdir(parents=True, exist_ok=True)
        dest = self.dir / digest
        if not dest.exists():
            part = self.dir / f".{digest}.part"
            shutil.copyfile(src, part)
            os.replace(part, dest)
        return FileRef(name=name or src.name, sha256=digest, size=dest.stat().st_size)

    def path(self, sha256: str) -> Path | None:
        """The file with that hash, if kept (anything else asked for is simply not there)."""
        if not SHA256.fullmatch(sha256):
            return None
        p = self.dir / sha256
        return p if p.is_file() else None
