"""The stall's catalog, cached in the box database: from the cloud's retained ``cmd/catalog``
or from a CSV file (``shian-edge catalog import``) for a stall with no network yet."""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from edge.store.outbox import Outbox
from shared.catalog import CatalogMessage, Product

log = logging.getLogger("shian.catalog")


class Catalog:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def replace(self, products: list[Product], version: str) -> None:
        """Swap the whole catalog in one transaction."""
        with self.outbox.transaction() as conn:
            conn.execute("DELETE FROM catalog")
            conn.executemany(
                "INSERT INTO catalog (plu, data) VALUES (?, ?)",
                ((p.plu, p.model_dump_json()) for p in products),
            )
            conn.execute("INSERT OR REPLACE INTO catalog_meta VALUES ('version', ?)", (version,))
        log.info("catalog %s: %d products", version, len(products))

    def version(self) -> str | None:
        rows = self.outbox.read("SELECT value FROM catalog_meta WHERE name = 'version'")
        return str(rows[0][0]) if rows else None

    def get(self, plu: str) -> Product | None:
        rows = self.outbox.read("SELECT data FROM catalog WHERE plu = ?", (plu,))
        return Product.model_validate_json(rows[0][0]) if rows else None

    def all(self) -> list[Product]:
        return [
            Product.model_validate_json(r[0])
            for r in self.outbox.read("SELECT data FROM catalog ORDER BY plu")
        ]

    def on_command(self, payload: bytes) -> None:
        """The retained ``cmd/catalog`` message (sent again at every reconnect)."""
        if not payload:
            return
        try:
            msg = CatalogMessage.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("bad catalog command: %s", exc.errors(include_url=False)[0]["msg"])
            raise
        if msg.version != self.version():
            self.replace(msg.products, msg.version)

    def export_json(self) -> str:
        return json.dumps([p.model_dump(mode="json") for p in self.all()], ensure_ascii=False)
