"""Sites, their districts and supervisors, and the certificates the collector watches: what
the operator registers (``shian-cloud sites``, ``supervisors``, ``certs``). Names are
checked here, where they are stored (a district reaches topics and the broker's ACL)."""

from __future__ import annotations

import re
from typing import Any

from cloud.db import Db
from cloud.registry import check_text
from shared.topics import check_name

KINDS = {
    "school_canteen": ("学校食堂", "School canteen"),
    "canteen": ("单位食堂", "Canteen"),
    "restaurant": ("餐馆", "Restaurant"),
    "market_stall": ("农贸市场摊位", "Market stall"),
}
GRADES = {
    # the national quantified grading of food-safety (餐饮服务食品安全量化分级), as faces
    "good": ("优秀", "Good"),
    "fair": ("良好", "Fair"),
    "poor": ("一般", "Poor"),
}


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
                "INSERT INTO sites (site, district, name, morning_check_by) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (site) DO UPDATE SET"
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

    def describe(self, site: str, kind: str | None, grade: str | None, now: float) -> None:
        """A site's kind (the operator's) and its food-safety grade (the regulator's)."""
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        if grade is not None and grade not in GRADES:
            raise ValueError(f"grade {grade!r} is not one of {', '.join(GRADES)}")
        with self.db.tx() as conn:
            if conn.execute("SELECT 1 FROM sites WHERE site = ?", (site,)).fetchone() is None:
                raise ValueError(f"no site {site!r} (shian-cloud sites set first)")
            if kind is not None:
                conn.execute("UPDATE sites SET kind = ? WHERE site = ?", (kind, site))
            if grade is not None:
                conn.execute(
                    "UPDATE sites SET grade = ?, grade_set = ? WHERE site = ?", (grade, now, site)
                )

    def set_live(self, site: str, off: bool | None = None, cap: int | str | None = "") -> None:
        """The regulator's switch of a site's live views, and its cap on viewers (None: the
        collector's default; "" keeps it)."""
        if isinstance(cap, int) and cap < 1:
            raise ValueError("the cap must be at least 1 viewer")
        with self.db.tx() as conn:
            if conn.execute("SELECT 1 FROM sites WHERE site = ?", (site,)).fetchone() is None:
                raise ValueError(f"no site {site!r} (shian-cloud sites set first)")
            if off is not None:
                conn.execute("UPDATE sites SET live_off = ? WHERE site = ?", (int(off), site))
            if cap != "":
                conn.execute("UPDATE sites SET live_cap = ? WHERE site = ?", (cap, site))

    def add_supervisor(
        self, name: str, district: str, role: str = "supervisor", firm: str = ""
    ) -> None:
        """A supervisor works their district; a leader reads the whole city (the console); an
        inspector works patrols, their own or their ``firm``'s (a third-party service firm)."""
        check_name(name, "supervisor")
        check_name(district, "district")
        if role not in ("supervisor", "leader", "inspector"):
            raise ValueError(f"role {role!r} is not supervisor, leader or inspector")
        if firm:
            check_name(firm, "firm")
            if role != "inspector":
                raise ValueError("only an inspector belongs to a service firm")
        with self.db.tx() as conn:
            conn.execute(
                "INSERT INTO supervisors (name, district, role, firm) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET district = excluded.district,"
                " role = excluded.role, firm = excluded.firm",
                (name, district, role, firm),
            )

    def import_certs(self, text: str) -> int:
        from cloud.alerts.certs import import_csv

        with self.db.tx() as conn:
            return import_csv(conn, text)

    def table(self, name: str) -> list[dict[str, Any]]:
        assert name in ("sites", "supervisors", "certs")
        return self.db.query(f"SELECT * FROM {name}")
