"""Config files: TOML validated by pydantic, unknown keys rejected, errors naming file and line.

Both sides keep their own config model (``edge.config``, ``cloud.config``) on this base, and
share :class:`MqttSettings` since both connect to the same broker the same way.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Config base: unknown keys are errors, so a typo never silently keeps a default."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class ConfigError(Exception):
    """A config that cannot be used; ``problems`` are lines like ``file:12: mqtt.port: ...``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def broker_url(v: str) -> str:
    """``v`` if it is an mqtt:// or mqtts:// URL with a host and a valid port."""
    parts = urlsplit(v)
    try:
        parts.port  # noqa: B018 - a port out of range raises here
    except ValueError as exc:
        raise ValueError(f"{v}: {exc}") from None
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError("must look like mqtt://host:1883 or mqtts://host:8883")
    return v


class MqttSettings(StrictModel):
    """How to reach the MQTT broker."""

    url: str = Field(
        default="mqtt://127.0.0.1:1883",
        description="Broker URL: mqtt://host:port, or mqtts://host:port for TLS.",
    )
    failover_urls: list[str] = Field(
        default_factory=list,
        max_length=16,
        description="Other nodes of the same broker cluster, in url's scheme. When the node in "
        "use cannot be reached or drops the session, the next is tried (each client takes them "
        "in an order of its own, so a dead node's clients spread over the others). A move loses "
        "and doubles nothing: the outbox sends again what is not confirmed, and the collector "
        "stores each event once.",
    )
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto", description="MQTT version; auto tries 5 and falls back to 3.1.1."
    )
    client_id: str = Field(
        default="",
        description="Client id; empty means the device id (edge) or shian-collector (cloud).",
    )
    username: str = Field(default="", description="Broker user name; empty for none.")
    password: SecretStr | None = Field(
        default=None, description="Broker password. Prefer password_file or SHIAN_MQTT_PASSWORD."
    )
    password_file: Path | None = Field(
        default=None,
        description="File holding the password, e.g. a systemd credential "
        "(LoadCredential=mqtt_password, then $CREDENTIALS_DIRECTORY/mqtt_password).",
    )
    ca_file: Path | None = Field(default=None, description="CA certificate for TLS (PEM).")
    cert_file: Path | None = Field(default=None, description="Client certificate for TLS (PEM).")
    key_file: Path | None = Field(default=None, description="Client key for TLS (PEM).")
    keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keepalive, seconds.")
    connect_timeout_s: float = Field(
        default=10, gt=0, le=120, description="Give up a connection attempt after this long."
    )
    backoff_initial_s: float = Field(
        default=0.5, gt=0, le=60, description="First reconnect delay; doubles on each failure."
    )
    backoff_max_s: float = Field(
        default=60, gt=0, le=3600, description="Longest reconnect delay (before jitter)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return broker_url(v)

    @field_validator("failover_urls")
    @classmethod
    def _urls(cls, v: list[str]) -> list[str]:
        return [broker_url(u) for u in v]

    @model_validator(mode="after")
    def _one_scheme(self) -> MqttSettings:
        scheme = urlsplit(self.url).scheme
        for u in self.failover_urls:
            if urlsplit(u).scheme != scheme:
                raise ValueError(f"failover url {u} is not {scheme}:// like url (one TLS setting)")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def secret(self) -> str | None:
        """The password from, in order: the environment, password_file, password."""
        env = os.environ.get("SHIAN_MQTT_PASSWORD")
        if env:
            return env
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return self.password.get_secret_value() if self.password else None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r'^\s*([A-Za-z0-9_\-."]+)\s*=')


def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Map each dotted key path in a TOML text to its line number (1-based)."""
    index: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for n, line in enumerate(text.splitlines(), 1):
        if m := _TABLE.match(line):
            table = tuple(p.strip().strip('"') for p in m.group(1).split("."))
            index.setdefault(table, n)
        elif m := _KEY.match(line):
            key = tuple(p.strip().strip('"') for p in m.group(1).split("."))
            index.setdefault(table + key, n)
    return index


def _where(index: dict[tuple[str, ...], int], loc: tuple[str, ...]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in index:
            return index[loc[:end]]
    return None


def load(path: Path, model: type[M]) -> M:
    """Read and validate a TOML config; raise :class:`ConfigError` naming each bad line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return validate(raw, model, source=str(path), text=text)


def validate(raw: dict[str, object], model: type[M], source: str = "<config>", text: str = "") -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        index = _line_index(text)
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(str(p) for p in err["loc"])
            line = _where(index, loc)
            where = f"{source}:{line}" if line else source
            msg = (
                "unknown key (not allowed here)" if err["type"] == "extra_forbidden" else err["msg"]
            )
            problems.append(f"{where}: {'.'.join(loc) or '(root)'}: {msg}")
        raise ConfigError(problems) from None


ENV_OVERRIDES = {
    "password_file": "SHIAN_MQTT_PASSWORD",
    "ticket_key_file": "SHIAN_TICKET_KEY",
    "token_file": "SHIAN_DISPLAY_TOKEN",
}
"""A file field's variable: set, the file is not read."""


def unreadable_files(cfg: BaseModel, where: str = "") -> list[str]:
    """Each ``*_file`` the config names that does not exist or this user cannot read (a pid
    file is the broker's to write, so it is left out): a missing CA is found by ``config
    validate``, not by a traceback later."""
    problems = []
    for name in type(cfg).model_fields:
        value, at = getattr(cfg, name), f"{where}{name}"
        if isinstance(value, BaseModel):
            problems += unreadable_files(value, f"{at}.")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    problems += unreadable_files(item, f"{at}[{i}].")
        elif isinstance(value, Path) and name.endswith("_file") and not name.endswith("pid_file"):
            if os.environ.get(ENV_OVERRIDES.get(name, "-")) or "%d" in str(value):
                continue  # given by the environment, or a systemd credential (%d/...)
            if not value.is_file():
                problems.append(f"{at}: {value} does not exist (or is not a file)")
            elif not os.access(value, os.R_OK):
                problems.append(f"{at}: {value} is not readable by this user")
    return problems
