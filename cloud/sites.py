"""Sites, their districts and supervisors, and the certificates the collector watches: what
the operator registers (``shian-cloud sites``, ``supervisors``, ``certs``). Names are
checked here, where they are stored (a district reaches topics and the broker's ACL)."""

from __future__ import annotations

import re
from typing import Any

from cloud.db import Db
from cloud.registry import check_text
from shared.topics import check_name


class Sites:
    def __init__(self, db: Db) -> None:
        self.db = db

    def set(self, site: str, district: str, name: str = "", morning_check_by: str = "") -> None:
        self.set_many([(site, district, name, morning_check_by)])

    def set_many(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Register sites (site, district, name, morning_check_by) in one transaction; open
        alerts of a site that changes district move with it."""
        for site, district, name, by in rows:
            check_name(site, "site")
            check_name(district, "district")
            check_text(name, "site name", 128)
            if by and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", by):
                raise ValueError(f"morning_check_by {by!r} is not HH:MM")
        with self.db.tx(locks=["alerts"]) as conn:
            conn.executemany(
                "INSERT INTO sites VALUES (?, ?, ?, ?) ON CONFLICT (site) DO UPDATE SET"
                " district = excluded.district, name = excluded.name,"
                " morning_check_by = excluded.morning_check_by",
                rows,
            )
            conn.executemany(
                "UPDATE alerts SET district = ? WHERE site = ? AND state != 'closed'",
                [(district, site) for site, district, _, _ in rows],
            )

    def set_districts(self, pairs: list[tuple[str, str]]) -> None:
        """Put sites in districts, keeping the names and morning-check times they have."""
        known = {r["site"]: r for r in self.db.query("SELECT * FROM sites")}
        rows = []
        for site, district in dict(pairs).items():
            old = known.get(site, {})
            rows.append((site, district, old.get("name", ""), old.get("morning_check_by", "")))
        self.set_many(rows)

    def add_supervisor(self, name: str, district: str) -> None:
        check_name(name, "supervisor")
        check_name(district, "district")
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO supervisors VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET district = excluded.district",
                (name, district),
            )

    def import_certs(self, text: str) -> int:
        from cloud.alerts.certs import import_csv

        with self.db.tx() as conn:
            return import_csv(conn, text)

    def table(self, name: str) -> list[dict[str, Any]]:
        assert name in ("sites", "supervisors", "certs")
        return self.db.query(f"SELECT * FROM {name}")
