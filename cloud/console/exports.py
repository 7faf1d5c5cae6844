"""A console list as a file: CSV (UTF-8 with a BOM, which Excel opens in Chinese) or an Excel
workbook (openpyxl, write-only). A text cell that starts like a formula (=, +, -, @) is
written as text with a leading quote, so a spreadsheet never runs what a box or a page wrote."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.responses import Response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
"""What a workbook cannot hold (and no list needs): a box's text may carry it."""


def safe(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = CONTROL.sub("", value)
    if value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export(name: str, fmt: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Response:
    """``name``.csv or ``name``.xlsx of ``rows`` (their ``columns``)."""
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(name)
        sheet.append(list(columns))
        for r in rows:
            sheet.append([safe(r[c]) for c in columns])
        out = io.BytesIO()
        book.save(out)
        return Response(out.getvalue(), media_type=XLSX, headers=_attachment(f"{name}.xlsx"))
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(columns)
    for r in rows:
        w.writerow([safe(r[c]) for c in columns])
    return Response(
        "\ufeff" + text.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers=_attachment(f"{name}.csv"),
    )


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename={filename}"}
