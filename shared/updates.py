"""Over-the-air updates: what the cloud sends a box, signed, and how the box checks it.

An update is one change for one box: a config patch, a model (its profile and files), or a
software release (a wheel). The cloud signs the canonical JSON of the update with its fleet
key (Ed25519, through ``cryptography``); the box holds the public key from its provisioning
and refuses anything not signed by it, not addressed to it, or not newer than the last update
it handled (``n`` counts per box, so an old signed update replayed is ignored). Files are
fetched from the cloud by their sha256 and checked against it; the manifest carries the hash,
so the signature covers the files too.

On the wire: retained on ``shian/v1/dev/{device}/cmd/update``, ``{"update": {...}, "sig":
"<base64>"}``; an empty retained message withdraws it (a halted rollout).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.codec import CodecError, loads
from shared.topics import NAME_RULE, check_name

SHA256 = r"^[0-9a-f]{64}$"
Kind = Literal["config", "model", "software"]


class UpdateRefused(ValueError):
    """Not an update this box may apply; the message says why (reported as an outcome)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileRef(_Frozen):
    """A file the box fetches from the cloud: ``{files_url}/{sha256}``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", description="File name.")
    sha256: str = Field(pattern=SHA256, description="SHA-256 of its bytes.")
    size: int = Field(ge=0, le=512 * 2**20, description="Bytes.")


class ModelUpdate(_Frozen):
    name: str = Field(description=f"The model profile's name ({NAME_RULE}).")
    profile: str = Field(max_length=65536, description="The profile, TOML text.")
    files: list[FileRef] = Field(min_length=1, max_length=4, description="Model and labels.")


class SoftwareUpdate(_Frozen):
    version: str = Field(pattern=r"^[0-9][0-9A-Za-z.+-]{0,31}$", description="Release version.")
    wheel: FileRef = Field(description="The release's wheel.")


class Update(_Frozen):
    v: Literal[1] = 1
    id: str = Field(pattern=r"^[0-9a-f]{32}$", description="This update.")
    rollout: str = Field(pattern=r"^[0-9a-f]{32}$", description="The rollout it belongs to.")
    device: str = Field(description="The one box it is for.")
    n: int = Field(ge=1, description="Counts the box's updates: only a higher one is taken.")
    kind: Kind
    created: float = Field(description="When the cloud made it (for people; never compared).")
    health_s: float = Field(ge=5, le=3600, description="How long the box must stay healthy.")
    files_url: str = Field(max_length=512, pattern=r"^https?://", description="Where files are.")
    config: dict[str, Any] | None = Field(default=None, description="kind config: a patch.")
    model: ModelUpdate | None = Field(default=None, description="kind model.")
    software: SoftwareUpdate | None = Field(default=None, description="kind software.")

    @model_validator(mode="after")
    def _one_kind(self) -> Update:
        check_name(self.device, "device")
        given = {k for k in ("config", "model", "software") if getattr(self, k) is not None}
        if given != {self.kind}:
            raise ValueError(f"a {self.kind} update carries exactly its own part, not {given}")
        if self.model is not None:
            check_name(self.model.name, "model")
        return self

    def files(self) -> list[FileRef]:
        if self.model is not None:
            return list(self.model.files)
        return [self.software.wheel] if self.software is not None else []


def canonical(update: Update) -> bytes:
    doc = update.model_dump(mode="json")
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(key: Ed25519PrivateKey, update: Update) -> bytes:
    """The message the cloud retains for the box."""
    sig = base64.b64encode(key.sign(canonical(update))).decode()
    return json.dumps({"update": update.model_dump(mode="json"), "sig": sig}).encode()


def public_key(text: str) -> Ed25519PublicKey:
    """The fleet's public key as the box's config holds it (base64 of its 32 raw bytes)."""
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise UpdateRefused(f"the box's fleet public key is not valid: {exc}") from None


def verify(key: Ed25519PublicKey, payload: bytes, device: str) -> Update:
    """The update in ``payload``, if the fleet key signed it and it is for ``device``."""
    try:
        doc = loads(payload)
    except CodecError as exc:
        raise UpdateRefused(f"not an update: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"update", "sig"}:
        raise UpdateRefused("not an update: expected {update, sig}")
    try:
        update = Update.model_validate(doc["update"])
        sig = base64.b64decode(str(doc["sig"]), validate=True)
    except (ValidationError, binascii.Error, ValueError) as exc:
        raise UpdateRefused(f"not a valid update: {str(exc)[:300]}") from None
    try:
        key.verify(sig, canonical(update))
    except InvalidSignature:
        raise UpdateRefused("bad signature: not signed by this fleet's key") from None
    if update.device != device:
        raise UpdateRefused(f"addressed to {update.device}, not to this box")
    return update
