"""The stall's catalog: products and their batches, from a CSV file or pushed by the cloud.

CSV columns (a header row is required; the order is free):
``plu, name, name_en, goods_code, unit, unit_price, origin, supplier, batch,
inspection_item, inspection_result, inspection_date, inspection_lab``. ``unit`` is ``kg`` or
``piece``; ``unit_price`` is in yuan (``12.80``). See docs/stall.md.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import SCHEMA_VERSION

COLUMNS = [
    "plu",
    "name",
    "name_en",
    "goods_code",
    "unit",
    "unit_price",
    "origin",
    "supplier",
    "batch",
    "inspection_item",
    "inspection_result",
    "inspection_date",
    "inspection_lab",
]
REQUIRED = {"plu", "name", "unit", "unit_price", "origin", "batch"}


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    plu: str = Field(pattern=r"^[A-Za-z0-9_-]{1,16}$", description="Price look-up code.")
    name: str = Field(min_length=1, max_length=32, description="Name (Chinese).")
    name_en: str = Field(default="", max_length=48, description="Name (English).")
    goods_code: str = Field(default="", max_length=32, description="Traceability goods code.")
    unit: Literal["kg", "piece"] = Field(description="Priced per kg or per piece.")
    unit_price_cents: int = Field(ge=0, le=10_000_000, description="Price per unit, fen.")
    origin: str = Field(min_length=1, max_length=64, description="Place of origin.")
    supplier: str = Field(default="", max_length=64, description="Supplier.")
    batch: str = Field(min_length=1, max_length=32, description="Batch (traceability) number.")
    inspection_item: str = Field(default="", max_length=48, description="What was tested.")
    inspection_result: str = Field(default="", max_length=48, description="Result.")
    inspection_date: date | None = Field(default=None, description="Date of the test.")
    inspection_lab: str = Field(default="", max_length=64, description="Who tested it.")


class CatalogMessage(BaseModel):
    """The retained ``cmd/catalog`` command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = Field(ge=1, le=SCHEMA_VERSION)
    version: str = Field(max_length=64, description="Changes whenever the catalog changes.")
    products: list[Product] = Field(max_length=2000)


class CatalogError(ValueError):
    """A CSV that cannot be used; the message names the row and column."""


def parse_csv(text: str) -> list[Product]:
    try:
        return _parse(text)
    except csv.Error as exc:
        raise CatalogError(f"not a CSV file: {exc}") from None


def _parse(text: str) -> list[Product]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = set(reader.fieldnames or [])
    missing = REQUIRED - header
    if missing:
        raise CatalogError(f"missing column(s): {', '.join(sorted(missing))}")
    unknown = header - set(COLUMNS)
    if unknown:
        raise CatalogError(f"unknown column(s): {', '.join(sorted(unknown))}")
    products: dict[str, Product] = {}
    for n, row in enumerate(reader, start=2):
        values = {k: (v or "").strip() for k, v in row.items() if k}
        raw_price = values.pop("unit_price")
        try:
            price = Decimal(raw_price)
        except InvalidOperation:
            price = Decimal("NaN")
        if not price.is_finite():
            raise CatalogError(f"row {n}: unit_price {raw_price!r} is not a number")
        if not values.get("inspection_date"):
            values.pop("inspection_date", None)
        try:
            p = Product.model_validate({**values, "unit_price_cents": int(price * 100)})
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            raise CatalogError(f"row {n}: {err['loc'][0]}: {err['msg']}") from None
        if p.plu in products:
            raise CatalogError(f"row {n}: PLU {p.plu} appears twice")
        products[p.plu] = p
    if not products:
        raise CatalogError("no products")
    return list(products.values())
