"""The registry: every broker user (boxes, supervisors, the collector) and what it is.

The collector believes this table, never a message: a box's site, district and role, and a
stall's market, stall number, retailer and current ticket key id come from here (``Identity``).
It owns the ``registry`` table; every name and text is checked here, where it is stored, so no
caller can put a ``+``, ``#``, ``/`` or a newline into an ACL line, a topic or a page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cloud.db import Db
from cloud.ranges import select_in
from shared.topics import check_name

Kind = Literal["device", "supervisor", "collector"]
ROLES = ("kitchen", "stall")
KEY_ID = re.compile(r"^[a-z0-9]{1,16}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RegistryError(ValueError):
    """A registration the registry refuses; the message says why."""


def check_text(value: str, what: str, limit: int = 64) -> str:
    """A free text shown to people (market, retailer): bounded, one line, no control bytes."""
    if len(value) > limit or _CONTROL.search(value):
        raise RegistryError(f"{what} {value!r}: at most {limit} characters on one line")
    return value


@dataclass(frozen=True)
class Identity:
    """One registry entry. For a device: its site, district and role; for a stall also what
    its tickets must name and the id of its current ticket key."""

    name: str
    kind: Kind
    role: str = ""
    site: str = ""
    district: str = ""
    market: str = ""
    stall_no: str = ""
    retailer: str = ""
    key_id: str = ""
    revoked: float | None = None

    def check(self) -> Identity:
        """Raise ``RegistryError`` unless every field may be stored."""
        try:
            check_name(self.name, self.kind)
            if self.kind == "device":
                check_name(self.site, "site")
                check_name(self.district, "district")
                if self.role not in ROLES:
                    raise RegistryError(f"role {self.role!r}: kitchen or stall")
            elif self.kind == "supervisor":
                check_name(self.district, "district")
            elif self.kind != "collector":
                raise RegistryError(f"kind {self.kind!r}: device, supervisor or collector")
        except ValueError as exc:
            raise RegistryError(str(exc)) from None
        check_text(self.market, "market")
        check_text(self.stall_no, "stall number", 32)
        check_text(self.retailer, "retailer")
        if self.key_id and not KEY_ID.fullmatch(self.key_id):
            raise RegistryError(f"key id {self.key_id!r}: 1 to 16 of a-z, 0-9")
        return self


_COLUMNS = (
    "name",
    "kind",
    "role",
    "site",
    "district",
    "market",
    "stall_no",
    "retailer",
    "key_id",
    "revoked",
)


def _row(ident: Identity) -> tuple[Any, ...]:
    values = {**asdict(ident), "revoked": None}  # put again: active again
    return tuple(values[c] for c in _COLUMNS)


def _identity(row: dict[str, Any]) -> Identity:
    text = {c: str(row[c] or "") for c in _COLUMNS if c not in ("kind", "revoked")}
    return Identity(kind=row["kind"], revoked=row["revoked"], **text)


class RegistryTable:
    """The ``registry`` table (schema in ``cloud.db.migrations``)."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def put(self, ident: Identity) -> None:
        """Add or replace an entry (un-revoking it); a name stays of one kind while active."""
        self.put_many([ident])

    def put_many(self, idents: list[Identity]) -> None:
        """``put`` for many, in one transaction: all are stored, or none."""
        for ident in idents:
            ident.check()
        names = sorted({i.name for i in idents})
        with self.db.tx(locks=["registry"]) as conn:
            rows = select_in(conn, "SELECT name, kind, revoked FROM registry", "name", names)
            kinds = {name: kind for name, kind, revoked in rows if revoked is None}
            for ident in idents:
                if kinds.get(ident.name, ident.kind) != ident.kind:
                    raise RegistryError(f"{ident.name} is already a {kinds[ident.name]}")
            conn.executemany(
                f"INSERT INTO registry ({', '.join(_COLUMNS)}) VALUES"
                f" ({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT (name) DO UPDATE SET "
                + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:]),
                list({i.name: _row(i) for i in idents}.values()),
            )

    def get(self, name: str) -> Identity | None:
        """The entry, revoked or not (a revoked stall's tickets still verify)."""
        rows = self.db.query("SELECT * FROM registry WHERE name = ?", (name,))
        return _identity(rows[0]) if rows else None

    def devices(self, names: Iterable[str]) -> dict[str, Identity]:
        """The active devices among ``names``, in one query (the collector's per-batch read)."""
        wanted = sorted(set(names))
        out: dict[str, Identity] = {}
        sql = "SELECT * FROM registry WHERE kind = 'device' AND revoked IS NULL AND name"
        if self.db.dialect == "postgresql":  # one array parameter: one statement, prepared once
            rows = self.db.query(sql + " = ANY(?)", [wanted]) if wanted else []
            return {r["name"]: _identity(r) for r in rows}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            rows = self.db.query(f"{sql} IN ({','.join('?' * len(chunk))})", chunk)
            out.update((r["name"], _identity(r)) for r in rows)
        return out

    def active(self, kind: Kind) -> list[Identity]:
        rows = self.db.query(
            "SELECT * FROM registry WHERE kind = ? AND revoked IS NULL ORDER BY name", (kind,)
        )
        return [_identity(r) for r in rows]

    def all(self) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM registry ORDER BY kind, name")

    def revoke(self, name: str) -> None:
        with self.db.tx(locks=["registry"]) as conn:
            row = conn.execute(
                "SELECT kind FROM registry WHERE name = ? AND revoked IS NULL", (name,)
            ).fetchone()
            if row is None:
                raise RegistryError(f"no active user {name}")
            conn.execute("UPDATE registry SET revoked = ? WHERE name = ?", (time.time(), name))
            conn.execute("DELETE FROM supervisors WHERE name = ?", (name,))
