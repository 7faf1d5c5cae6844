"""Registering boxes and supervisors: broker credentials, the ACL, ticket keys, bundles.

Mosquitto is given a password file and an ACL file (``password_file`` / ``acl_file`` in its
config), both written here, rather than driven through the dynamic security plugin: two plain
files are easy to back up, to read in a review and to reason about, the ACL is regenerated
whole from the registry (so it cannot drift), and ``%u`` patterns give every box exactly its
own topics with a handful of lines however many boxes there are. The broker re-reads both on
SIGHUP (``provisioning.broker_pid_file``). Passwords are hashed by ``mosquitto_passwd``, from
the broker's own package.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from typing import Any

from cloud.config import CloudConfig
from shared.signing import new_key, write_key

ACL_HEADER = """\
# Written by shian-cloud from its registry; edits here are overwritten.
# Every box: only its own topics (%u is the user name, which is the device id).
pattern write shian/v1/dev/%u/events
pattern write shian/v1/dev/%u/status
pattern write shian/v1/dev/%u/snap/+
pattern read shian/v1/dev/%u/cmd/#
"""


class ProvisioningError(ValueError):
    """A registration that cannot be made; the message says why."""


def acl_text(collector: str, supervisors: list[tuple[str, str]]) -> str:
    out = [ACL_HEADER, f"\n# the collector\nuser {collector}\ntopic readwrite shian/v1/#\n"]
    for name, district in sorted(supervisors):
        out.append(
            f"\n# supervisor of {district}\nuser {name}\n"
            f"topic read shian/v1/alerts/{district}/+\n"
            f"topic read shian/v1/escalations/{district}\n"
            f"topic write shian/v1/sup/{name}/cmd\n"
            f"topic read shian/v1/sup/{name}/reply\n"
        )
    return "".join(out)


class Registry:
    """Users of the broker, kept in the collector's database and mirrored to the files."""

    def __init__(self, cfg: CloudConfig, store: Any) -> None:
        self.cfg, self.store = cfg, store
        p = cfg.provisioning
        self.dir = p.broker_dir
        self.passwd, self.acl = self.dir / "passwd", self.dir / "acl"

    def _rows(self, kind: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.store._rows(
            "SELECT * FROM registry WHERE kind = ? AND revoked IS NULL", (kind,)
        )
        return rows

    def _passwd(self, *args: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        flags = [] if self.passwd.exists() else ["-c"]
        try:
            subprocess.run(
                ["mosquitto_passwd", *flags, *args], check=True, capture_output=True, text=True
            )
        except FileNotFoundError:
            raise ProvisioningError("mosquitto_passwd not found (the mosquitto package)") from None
        except subprocess.CalledProcessError as exc:
            raise ProvisioningError(f"mosquitto_passwd: {exc.stderr.strip()}") from None
        os.chmod(self.passwd, 0o600)

    def _add_user(
        self, name: str, kind: str, role: str = "", site: str = "", district: str = ""
    ) -> str:
        other = self.store._rows("SELECT kind, revoked FROM registry WHERE name = ?", (name,))
        if other and other[0]["revoked"] is None and other[0]["kind"] != kind:
            raise ProvisioningError(f"{name} is already a {other[0]['kind']}")
        password = secrets.token_urlsafe(24)
        self._passwd("-b", str(self.passwd), name, password)
        with self.store.db.tx() as conn:
            conn.execute(
                "INSERT INTO registry VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT (name) DO UPDATE"
                " SET kind = excluded.kind, role = excluded.role, site = excluded.site,"
                " district = excluded.district, revoked = NULL",
                (name, kind, role, site, district),
            )
        return password

    def sync_files(self) -> None:
        """Rewrite the ACL from the registry and make the broker re-read its files."""
        collector = self.cfg.broker().username or self.cfg.broker().client_id
        sups = [(r["name"], r["district"]) for r in self._rows("supervisor")]
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.acl.with_suffix(".new")
        tmp.write_text(acl_text(collector, sups))
        os.chmod(tmp, 0o600)
        tmp.replace(self.acl)
        pid_file = self.cfg.provisioning.broker_pid_file
        if pid_file and pid_file.exists():
            os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)

    def collector_user(self) -> str:
        """Credentials of the collector itself (once, at set-up)."""
        name = self.cfg.broker().username or "shian-collector"
        password = self._add_user(name, "collector")
        self.sync_files()
        return password

    def add_device(
        self, device: str, site: str, district: str, role: str, stall: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Credentials, ticket key (a stall), and the bundle the installer carries to the box."""
        password = self._add_user(device, "device", role, site, district)
        self.store.set_site(site, district)
        key_hex = None
        if role == "stall":
            key = new_key()
            write_key(self.cfg.tickets.keys_dir / f"{device}.key", key)
            key_hex = key.hex()
        self.sync_files()
        p = self.cfg.provisioning
        ca = p.ca_file.read_text() if p.ca_file else None
        bundle = {
            "v": 1,
            "device": device,
            "site": site,
            "district": district,
            "role": role,
            "mqtt": {
                "url": p.device_broker_url,
                "username": device,
                "password": password,
                "ca_pem": ca,
            },
            "ticket_key": key_hex,
            "ticket_base_url": p.ticket_base_url,
            "stall": stall or {},
        }
        p.bundle_dir.mkdir(parents=True, exist_ok=True)
        path = p.bundle_dir / f"{device}.json"
        path.write_text(json.dumps(bundle, ensure_ascii=False, indent=2))
        os.chmod(path, 0o600)
        bundle["path"] = str(path)
        return bundle

    def add_supervisor(self, name: str, district: str) -> str:
        password = self._add_user(name, "supervisor", district=district)
        self.store.add_supervisor(name, district)
        self.sync_files()
        return password

    def revoke(self, name: str) -> None:
        rows = self.store._rows(
            "SELECT kind FROM registry WHERE name = ? AND revoked IS NULL", (name,)
        )
        if not rows:
            raise ProvisioningError(f"no active user {name}")
        self._passwd("-D", str(self.passwd), name)
        with self.store.db.tx() as conn:
            conn.execute("UPDATE registry SET revoked = ? WHERE name = ?", (time.time(), name))
            conn.execute("DELETE FROM supervisors WHERE name = ?", (name,))
        # the ticket key stays: tickets already sold must still verify as genuine
        self.sync_files()

    def list(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.store._rows("SELECT * FROM registry ORDER BY kind, name")
        return rows
