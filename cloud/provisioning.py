"""Registering boxes and supervisors: the registry entry, broker credentials and ACL, a stall's
ticket key, and the bundle the installer carries to the box.

The registry (``cloud.registry``) is the truth; the broker's files (``cloud.broker_files``) are
written from it. The broker re-reads them on SIGHUP (``provisioning.broker_pid_file``), or
``systemctl reload mosquitto`` when this process may not signal it (docs/installing.md).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import zlib
from dataclasses import replace
from typing import Any

from cloud.broker_files import BrokerFiles
from cloud.config import CloudConfig
from cloud.fleet.keys import FleetKey
from cloud.registry import Identity, RegistryError
from cloud.tickets import TicketKeys
from shared.secretfiles import write_secret

log = logging.getLogger("shian.provisioning")

BUNDLE_NOTE = (
    "This file holds the box's broker password (and a stall's ticket key). Carry it to the box, "
    "run `shian-edge provision` with it, then delete it here and there."
)


class ProvisioningError(ValueError):
    """A registration that cannot be made; the message says why."""


class Registry:
    """Registration as the operator does it (``shian-cloud devices add``, ``supervisors add``,
    ``broker init``, ``devices revoke``)."""

    def __init__(self, cfg: CloudConfig, store: Any) -> None:
        self.cfg, self.store = cfg, store
        p = cfg.provisioning
        self.files = BrokerFiles(p.broker_dir, p.broker_group)
        self.keys = TicketKeys(cfg.tickets.keys_dir)

    def _put(self, idents: list[Identity]) -> dict[str, str]:
        """The entries, and a new broker password for each (returned once)."""
        try:
            self.store.registry.put_many(idents)
        except RegistryError as exc:
            raise ProvisioningError(str(exc)) from None
        passwords = {i.name: secrets.token_urlsafe(24) for i in idents}
        self.files.set_passwords(passwords)
        return passwords

    def sync_files(self) -> None:
        """Rewrite the ACL from the registry and make the broker re-read its files: touch
        ``reload`` (which shian-broker-reload.path watches), and SIGHUP it when this process
        may (``broker_pid_file``)."""
        registry = self.store.registry
        collector = self.cfg.broker().username or self.cfg.broker().client_id
        self.files.write_acl(collector, registry.active("device"), registry.active("supervisor"))
        self.files.touch_reload()
        pid_file = self.cfg.provisioning.broker_pid_file
        if pid_file and pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
            except (OSError, ValueError) as exc:
                log.warning("cannot signal the broker (%s): run `systemctl reload mosquitto`", exc)

    def collector_user(self) -> str:
        """Credentials of the collector itself (once, at set-up)."""
        name = self.cfg.broker().username or "shian-collector"
        password = self._put([Identity(name=name, kind="collector")])[name]
        self.sync_files()
        return password

    def add_device(
        self,
        device: str,
        site: str,
        district: str,
        role: str,
        stall: dict[str, str] | None = None,
        rotate_key: bool = False,
    ) -> dict[str, Any]:
        """Register a box; return its bundle (written 0600 to ``bundle_dir``). A stall keeps
        its ticket key when registered again, unless ``rotate_key``: then it gets a new key
        with a new id, and the old keys stay for the tickets already printed."""
        row = {"device": device, "site": site, "district": district, "role": role, **(stall or {})}
        return self.add_devices([row], rotate_key)[0]

    def add_devices(
        self, rows: list[dict[str, str]], rotate_key: bool = False
    ) -> list[dict[str, Any]]:
        """Register boxes (device, site, district, role, and for a stall market, stall_no,
        retailer), each checked before any is written; the broker's files are written once."""
        idents = [self._identity(r) for r in rows]
        if rotate_key and any(i.role != "stall" for i in idents):
            raise ProvisioningError("--rotate-key is for a stall's ticket key")
        keys: dict[str, bytes] = {}
        for n, ident in enumerate(idents):
            if ident.role == "stall":
                key_id, keys[ident.name] = self._stall_key(ident.name, rotate_key)
                idents[n] = replace(ident, key_id=key_id)
        passwords = self._put(idents)
        self.store.sites.set_districts([(i.site, i.district) for i in idents])
        self.sync_files()
        return [self._bundle(i, passwords[i.name], keys.get(i.name)) for i in idents]

    @staticmethod
    def _identity(row: dict[str, str]) -> Identity:
        role = row.get("role", "")
        stall = role == "stall"
        ident = Identity(
            name=row.get("device", ""),
            kind="device",
            role=role,
            site=row.get("site", ""),
            district=row.get("district", ""),
            market=(row.get("market") or row.get("site", "")) if stall else "",
            stall_no=(row.get("stall_no") or row.get("device", "")) if stall else "",
            retailer=(row.get("retailer") or "-") if stall else "",
        )
        try:
            return ident.check()
        except RegistryError as exc:
            raise ProvisioningError(str(exc)) from None

    def _bundle(self, ident: Identity, password: str, key: bytes | None) -> dict[str, Any]:
        p = self.cfg.provisioning
        bundle: dict[str, Any] = {
            "v": 1,
            "note": BUNDLE_NOTE,
            "device": ident.name,
            "site": ident.site,
            "role": ident.role,
            "mqtt": {
                **_nodes(p.device_broker_url, p.device_failover_urls, ident.name),
                "username": ident.name,
                "password": password,
                "ca_pem": p.ca_file.read_text() if p.ca_file else None,
            },
            # updates the box will take are signed with this (docs/fleet.md)
            "fleet_public_key": FleetKey(self.cfg.data_dir / "fleet").public_b64(create=True),
        }
        if key is not None:
            bundle["ticket_key"], bundle["ticket_key_id"] = key.hex(), ident.key_id
            bundle["ticket_base_url"] = p.ticket_base_url
            bundle["stall"] = {
                "market": ident.market,
                "stall_no": ident.stall_no,
                "retailer": ident.retailer,
            }
        path = p.bundle_dir / f"{ident.name}.json"
        write_secret(path, json.dumps(bundle, ensure_ascii=False, indent=2))
        bundle["path"] = str(path)
        return bundle

    def _stall_key(self, device: str, rotate: bool) -> tuple[str, bytes]:
        """The stall's current key (id, bytes), or a new one."""
        if not rotate:
            known = self.store.registry.get(device)
            key_id = known.key_id if known is not None else ""  # "": a key from before ids
            try:
                return key_id, self.keys.read(device, key_id)
            except (OSError, ValueError):
                pass  # none yet: make one
        return self.keys.create(device)

    def add_supervisor(
        self, name: str, district: str, role: str = "supervisor", firm: str = ""
    ) -> str:
        who = Identity(name=name, kind="supervisor", district=district, role=role)
        password = self._put([who])[name]
        self.store.sites.add_supervisor(name, district, role, firm)
        self.sync_files()
        return password

    def revoke(self, name: str) -> None:
        try:
            self.store.registry.revoke(name)
        except RegistryError as exc:
            raise ProvisioningError(str(exc)) from None
        self.files.remove(name)
        # the ticket keys stay: tickets already sold must still verify as genuine
        self.sync_files()

    def list(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.store.registry.all()
        return rows


def _nodes(url: str, failover: list[str], name: str) -> dict[str, Any]:
    """A box's broker: one node of a cluster, chosen by its name (so the boxes spread over
    the nodes), and the others to move to; or the one broker."""
    nodes = list(dict.fromkeys([url, *failover]))
    if len(nodes) == 1:
        return {"url": url}
    first = zlib.crc32(name.encode()) % len(nodes)
    return {"url": nodes[first], "failover_urls": nodes[first + 1 :] + nodes[:first]}
