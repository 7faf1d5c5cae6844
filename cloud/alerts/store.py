"""The collector store's side for alerts: the alert outbox, webhook queues, and what the CLI
reads and writes (alerts, sites, supervisors, certificates). A mixin of ``cloud.store.Store``,
whose database it uses."""

from __future__ import annotations

import re
import time
from typing import Any

from cloud.alerts import incidents
from cloud.alerts.engine import AlertEngine
from cloud.config import AlertSettings
from cloud.db import Db
from cloud.registry import check_text
from shared.topics import check_name


class AlertTables:
    db: Db
    engine: AlertEngine | None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def pending_alert_messages(self, after: int, limit: int) -> list[tuple[int, str, str, int]]:
        rows = self.db.query(
            "SELECT seq, topic, payload, retain FROM alert_outbox WHERE sent IS NULL AND "
            "seq > ? ORDER BY seq LIMIT ?",
            (after, limit),
        )
        return [(r["seq"], r["topic"], r["payload"], r["retain"]) for r in rows]

    def mark_alert_messages_sent(self, seqs: list[int]) -> None:
        now = time.time()
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE alert_outbox SET sent = ? WHERE seq = ?", ((now, s) for s in seqs)
            )
            conn.execute("DELETE FROM alert_outbox WHERE sent < ?", (now - 86400,))

    def hold_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl_s`` unless another holder has it still.
        Collectors sharing a database elect this way the one that publishes the alert outbox
        (in order, once) and the one that posts to group bots; when it stops renewing, another
        takes over after ``ttl_s``."""
        now = time.time()
        with self.db.tx(locks=[f"lease:{name}"]) as conn:
            row = conn.execute(
                "SELECT holder, until FROM leases WHERE name = ?", (name,)
            ).fetchone()
            if row is not None and row[0] != holder and row[1] > now:
                return False
            conn.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name)"
                " DO UPDATE SET holder = excluded.holder, until = excluded.until",
                (name, holder, now + ttl_s),
            )
            return True

    def pending_webhooks(self, bot: str, limit: int) -> list[tuple[int, str, str]]:
        rows = self.db.query(
            "SELECT id, alert, text FROM webhook_queue WHERE bot = ? AND sent IS NULL "
            "ORDER BY id LIMIT ?",
            (bot, limit),
        )
        return [(r["id"], r["alert"], r["text"]) for r in rows]

    def webhooks_sent(self, ids: list[int]) -> None:
        now = time.time()
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE webhook_queue SET sent = ? WHERE id = ?", ((now, i) for i in ids)
            )

    def webhooks_failed(self, ids: list[int]) -> None:
        with self.db.tx() as conn:
            conn.executemany(
                "UPDATE webhook_queue SET attempts = attempts + 1 WHERE id = ?", ((i,) for i in ids)
            )

    # -- alerts, sites, supervisors, certificates (the CLI's view) -------------------------
    def alerts(
        self, district: str | None = None, state: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM alerts WHERE 1 = 1", []
        if district:
            sql += " AND district = ?"
            params.append(district)
        if state:
            sql += " AND state = ?"
            params.append(state)
        rows = self._rows(sql + " ORDER BY last_seen DESC LIMIT ?", (*params, limit))
        return [self._message(r) for r in rows]

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        if not rows:
            return None
        if rows[0]["type"] != incidents.INCIDENT:
            return self._message(rows[0])
        boxes = incidents.boxes(self._rows(incidents.MEMBERS, (alert_id,)))  # with every box
        return (self.engine or AlertEngine(AlertSettings())).message(rows[0], boxes)

    def _message(self, row: dict[str, Any]) -> dict[str, Any]:
        engine = self.engine or AlertEngine(AlertSettings())
        return engine.message(row)

    def set_site(
        self, site: str, district: str, name: str = "", morning_check_by: str = ""
    ) -> None:
        self.set_sites([(site, district, name, morning_check_by)])

    def set_sites(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Register sites (site, district, name, morning_check_by) in one transaction; open
        alerts of a site that changes district move with it. Names are checked here, where
        they are stored (a district reaches topics and the broker's ACL)."""
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
        known = {r["site"]: r for r in self._rows("SELECT * FROM sites")}
        rows = []
        for site, district in dict(pairs).items():
            old = known.get(site, {})
            rows.append((site, district, old.get("name", ""), old.get("morning_check_by", "")))
        self.set_sites(rows)

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
        return self._rows(f"SELECT * FROM {name}")
