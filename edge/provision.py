"""Provisioning a box from the bundle made by ``shian-cloud devices add``.

The config goes to ``<dir>/edge.toml`` (mode 0600) and the secrets beside it in files of their
own (``mqtt_password``, ``ticket.key``: 0600; ``ca.pem``), so that the config can be shown to
someone without showing the secrets. The box model (``firmware_profiles/boxes``) sets the
detector threads, the detect resolution and the camera limit; a camera URL template
(``firmware_profiles/cameras``) makes the camera URLs from host, user and channels.
"""

from __future__ import annotations

import difflib
import json
import os
import pwd
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from edge.config import EdgeConfig
from shared.assets import profiles_dir
from shared.config import StrictModel, load, validate
from shared.secretfiles import write_secret


class BoxProfile(StrictModel):
    title: str = Field(description="Box model.")
    detector_threads: int = Field(ge=1, description="LiteRT threads.")
    max_cameras: int = Field(ge=1, description="Cameras it can watch at detect fps.")
    detect_width: int = Field(description="Detect resolution, width.")
    detect_height: int = Field(description="Detect resolution, height.")
    fps: float = Field(description="Detect fps per camera.")


class CameraTemplate(StrictModel):
    title: str = Field(description="Camera or NVR family.")
    main: str = Field(description="Main stream URL template.")
    sub: str = Field(description="Sub stream URL template (what detection uses).")


def profile(kind: str, name: str) -> Any:
    model: type[StrictModel] = BoxProfile if kind == "boxes" else CameraTemplate
    path = profiles_dir() / kind / f"{name}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in (profiles_dir() / kind).glob("*.toml")))
        what = {"boxes": "box", "cameras": "camera"}[kind]
        raise ValueError(f"no {what} profile {name!r}; known: {known}")
    return load(path, model)


def channels(spec: str) -> list[int]:
    """'1-4' or '1,3,5' -> channel numbers."""
    out: list[int] = []
    for part in spec.split(","):
        a, _, b = part.strip().partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


@dataclass(frozen=True)
class Provisioned:
    path: Path
    backup: Path | None = None
    """The config as it was, when provisioning again changed it."""
    diff: list[str] = field(default_factory=list)
    """What changed in it (unified diff; the secrets are in files of their own)."""


def _owner(name: str) -> tuple[int, int] | None:
    if not name:
        return None
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise ValueError(
            f"no user {name!r} here: create it first "
            f"(sudo useradd --system --groups dialout,video {name})"
        ) from None
    return pw.pw_uid, pw.pw_gid


def _write(path: Path, text: str, mode: int, owner: tuple[int, int] | None = None) -> None:
    write_secret(path, text, mode)  # created with its mode, never readable by others first
    if owner is not None:
        os.chown(path, *owner)


def _replace_config(path: Path, text: str, owner: tuple[int, int] | None) -> Provisioned:
    """Write the config; a different one already there is kept as a dated backup and the
    difference returned, so provisioning again never drops hand edits without a word."""
    old = path.read_text(encoding="utf-8") if path.exists() else None
    backup = None
    diff: list[str] = []
    if old is not None and old != text:
        stamp, n = time.strftime("%Y%m%d-%H%M%S"), 0
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        while backup.exists():  # provisioned twice in one second: keep both
            n += 1
            backup = path.with_name(f"{path.name}.{stamp}-{n}.bak")
        _write(backup, old, 0o600, owner)
        diff = list(
            difflib.unified_diff(
                old.splitlines(), text.splitlines(), str(backup), str(path), lineterm=""
            )
        )
    _write(path, text, 0o600, owner)
    return Provisioned(path, backup, diff)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string


def provision(
    bundle_path: Path,
    conf_dir: Path,
    data_dir: Path,
    box: str = "pi5",
    camera_template: str | None = None,
    camera_host: str = "",
    camera_user: str = "admin",
    camera_password: str = "",
    camera_channels: str = "",
    model: str = "ssd_oidv4",
    scale_port: str = "",
    scale_profile: str = "",
    printer: str = "dummy",
    owner: str = "",
) -> Provisioned:
    """Write the box's config and secrets from its bundle, owned by ``owner`` (the service's
    user) when given."""
    who = _owner(owner)
    b = json.loads(bundle_path.read_text())
    if b.get("v") != 1:
        raise ValueError(f"{bundle_path}: not a Shian bundle (v={b.get('v')})")
    box_p: BoxProfile = profile("boxes", box)
    conf_dir.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    if who is not None:
        os.chown(data_dir, *who)
    _write(conf_dir / "mqtt_password", b["mqtt"]["password"] + "\n", 0o600, who)
    lines = [
        f"device = {_toml(b['device'])}",
        f"site = {_toml(b['site'])}",
        f"data_dir = {_toml(str(data_dir))}",
        f"box = {_toml(box)}",
        "",
        "[mqtt]",
        f"url = {_toml(b['mqtt']['url'])}",
        *(
            [f"failover_urls = {_toml(list(b['mqtt']['failover_urls']))}"]
            if b["mqtt"].get("failover_urls")
            else []
        ),
        f"username = {_toml(b['mqtt']['username'])}",
        f"password_file = {_toml(str(conf_dir / 'mqtt_password'))}",
    ]
    if b["mqtt"].get("ca_pem"):
        _write(conf_dir / "ca.pem", b["mqtt"]["ca_pem"], 0o644, who)
        lines.append(f"ca_file = {_toml(str(conf_dir / 'ca.pem'))}")
    if b.get("fleet_public_key"):
        lines += ["", "[fleet]", f"public_key = {_toml(b['fleet_public_key'])}"]
    if b["role"] == "stall":
        _write(conf_dir / "ticket.key", b["ticket_key"] + "\n", 0o600, who)
        s = b.get("stall") or {}
        lines += [
            "",
            "[stall]",
            f"market = {_toml(s.get('market') or b['site'])}",
            f"stall_no = {_toml(s.get('stall_no') or b['device'])}",
            f"retailer = {_toml(s.get('retailer') or '-')}",
            f"ticket_base_url = {_toml(b['ticket_base_url'])}",
            f"ticket_key_file = {_toml(str(conf_dir / 'ticket.key'))}",
            f"ticket_key_id = {_toml(b.get('ticket_key_id') or '')}",
        ]
        if scale_port:
            lines += [
                "",
                "[stall.scale]",
                f"port = {_toml(scale_port)}",
                f"profile = {_toml(scale_profile or 'ad_st_gs')}",
            ]
        lines += ["", "[stall.printer]", f"connection = {_toml(printer)}"]
    else:
        chans = channels(camera_channels) if camera_channels else []
        if len(chans) > box_p.max_cameras:
            raise ValueError(f"{box_p.title} watches at most {box_p.max_cameras} cameras")
        lines += [
            "",
            "[kitchen]",
            f"model = {_toml(model)}",
            f"detector_threads = {box_p.detector_threads}",
        ]
        for ch in chans:
            assert camera_template is not None, "camera channels need a camera template"
            tpl: CameraTemplate = profile("cameras", camera_template)
            url = tpl.sub.format(
                user=camera_user, password=camera_password, host=camera_host, channel=ch
            )
            lines += [
                "",
                "[[kitchen.cameras]]",
                f"name = {_toml(f'cam{ch}')}",
                f"source = {_toml(url)}",
                f"width = {box_p.detect_width}",
                f"height = {box_p.detect_height}",
                f"fps = {box_p.fps}",
            ]
        lines += [
            "",
            "[[kitchen.rules]]",
            'violation = "animal_in_kitchen"',
            'labels = ["Cat", "Dog"]',
            "",
            "[[kitchen.rules]]",
            'violation = "person_after_hours"',
            'labels = ["Person"]',
            'active = [{ start = "21:00", end = "05:00" }]',
        ]
    text = "\n".join(lines) + "\n"
    import tomllib

    validate(tomllib.loads(text), EdgeConfig, source="generated edge.toml", text=text)
    return _replace_config(conf_dir / "edge.toml", text, who)
