"""Licences and certificates: business licence, food operation licence, staff health
certificates. Imported from CSV (``shian-cloud certs import``); checked at start and daily, an
alert is raised 30, 7 and 0 days before expiry (minor, major, critical), one alert per
certificate that grows in severity; a renewed certificate closes it.

CSV columns: ``site, kind, holder, number, expires`` (YYYY-MM-DD); ``kind`` is one of
business_licence, food_operation_licence, health_certificate.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import TYPE_CHECKING

from cloud.db.base import Conn

if TYPE_CHECKING:
    from cloud.alerts.engine import AlertEngine

KINDS = {
    "business_licence": "营业执照 business licence",
    "food_operation_licence": "食品经营许可证 food operation licence",
    "health_certificate": "健康证 health certificate",
}
STAGES = [(0, "0", "critical"), (7, "7", "major"), (30, "30", "minor")]


class CertError(ValueError):
    """A CSV that cannot be used; the message names the row."""


def import_csv(conn: Conn, text: str) -> int:
    try:
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    except csv.Error as exc:
        raise CertError(f"not a CSV file: {exc}") from None
    need = {"site", "kind", "holder", "number", "expires"}
    if not rows or need - set(rows[0]):
        raise CertError(f"need columns: {', '.join(sorted(need))}")
    for n, raw in enumerate(rows, start=2):
        r = {k: (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
        kind = r["kind"]
        if kind not in KINDS:
            raise CertError(f"row {n}: kind {kind!r} is not one of {', '.join(KINDS)}")
        try:
            expires = date.fromisoformat(r["expires"])
        except ValueError:
            raise CertError(f"row {n}: expires {r['expires']!r} is not YYYY-MM-DD") from None
        if not r["number"] or not r["site"]:
            raise CertError(f"row {n}: site and number are required")
        conn.execute(
            "INSERT INTO certs (number, site, kind, holder, expires) VALUES (?,?,?,?,?) "
            "ON CONFLICT(number) DO UPDATE SET site = excluded.site, kind = excluded.kind, "
            "holder = excluded.holder, expires = excluded.expires",
            (
                r["number"],
                r["site"],
                kind,
                r["holder"],
                expires.isoformat(),
            ),
        )
    return len(rows)


def stage_of(days_left: int) -> tuple[str, str] | None:
    for limit, stage, severity in STAGES:
        if days_left <= limit:
            return stage, severity
    return None


class Certificates:
    """The engine's certificate checks (handed the engine, which holds one)."""

    def __init__(self, engine: AlertEngine) -> None:
        self.engine = engine

    def check(self, conn: Conn, today: date, now: float) -> None:
        """Raise, upgrade or close the expiry alert of every certificate."""
        for number, site, kind, holder, expires, stage in conn.execute(
            "SELECT number, site, kind, holder, expires, stage FROM certs"
        ).fetchall():
            days = (date.fromisoformat(expires) - today).days
            found = stage_of(days)
            atype = f"{kind}_expiring"
            if found is None:
                if stage is not None:  # renewed
                    self.engine.clear(conn, now, site, atype, number, "renewed")
                    conn.execute("UPDATE certs SET stage = NULL WHERE number = ?", (number,))
                continue
            new_stage, severity = found
            if new_stage == stage:
                continue
            when = "expired" if days < 0 else "expires today" if days == 0 else f"in {days} days"
            self.engine.raise_(
                conn,
                now,
                site=site,
                type=atype,
                source=number,
                severity=severity,
                title=f"{KINDS[kind]} of {holder} (No. {number}) {expires}: {when}",
            )
            conn.execute("UPDATE certs SET stage = ? WHERE number = ?", (new_stage, number))
