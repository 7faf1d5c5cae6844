"""What the console reads: alerts as a signed-in supervisor may see them, filtered."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from cloud.console.accounts import Session
from cloud.db import Db
from shared.alerts import TRANSITIONS

STATES = ("open", "acknowledged", "rectification_requested", "rectified", "closed")


@dataclass(frozen=True)
class Filters:
    state: str = ""
    type: str = ""
    site: str = ""
    overdue: bool = False

    @classmethod
    def of(cls, params: Any) -> Filters:
        """From a query string; what is not a known value is dropped, never an error."""
        state = params.get("state", "")
        return cls(
            state=state if state in STATES else "",
            type=str(params.get("type", ""))[:48],
            site=str(params.get("site", ""))[:64],
            overdue=params.get("overdue", "") == "1",
        )

    def query(self) -> str:
        from urllib.parse import urlencode

        pairs = {"state": self.state, "type": self.type, "site": self.site}
        if self.overdue:
            pairs["overdue"] = "1"
        return urlencode({k: v for k, v in pairs.items() if v})


COLUMNS = "id, state, severity, type, district, site, title, first_seen, last_seen, count, due"


def alerts(
    db: Db, who: Session, f: Filters, now: float | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    now = time.time() if now is None else now
    sql, params = f"SELECT {COLUMNS} FROM alerts WHERE 1 = 1", list[Any]()
    if who.role != "leader":
        sql += " AND district = ?"
        params.append(who.district)
    for column in ("state", "type", "site"):
        if getattr(f, column):
            sql += f" AND {column} = ?"
            params.append(getattr(f, column))
    if f.overdue:
        sql += " AND due IS NOT NULL AND due < ? AND state != 'closed'"
        params.append(now)
    return db.query(sql + " ORDER BY last_seen DESC LIMIT ?", (*params, limit))


def alert(db: Db, who: Session, alert_id: str) -> dict[str, Any] | None:
    """One alert, or None when there is none or it is another district's (the same answer:
    a supervisor learns nothing of other districts)."""
    rows = db.query("SELECT * FROM alerts WHERE id = ?", (alert_id[:64],))
    if not rows or not who.sees(rows[0]["district"]):
        return None
    return rows[0]


def actions(state: str) -> list[str]:
    """What a supervisor may do to an alert in ``state`` (rectify is the business's)."""
    return [a for a, (sources, _) in TRANSITIONS.items() if state in sources and a != "rectify"]


def changes(db: Db) -> int:
    """A number that grows with every change of any alert (each is queued for supervisors)."""
    rows = db.query("SELECT max(seq) AS seq FROM alert_outbox")
    return int(rows[0]["seq"] or 0)
