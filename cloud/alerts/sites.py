"""Sites from a CSV file (``shian-cloud sites import``): a city registers its 1,500 businesses
at once, not one command each. Columns: site, district, and optionally name and
morning_check_by (HH:MM). Every row is checked before anything is written; an error names
the row."""

from __future__ import annotations

import csv
import io
import re

from shared import topics

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class SiteError(ValueError):
    """A CSV that cannot be used; the message names the row."""


def parse_sites(text: str) -> list[tuple[str, str, str, str]]:
    """(site, district, name, morning_check_by) for each row."""
    try:
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    except csv.Error as exc:
        raise SiteError(f"not a CSV file: {exc}") from None
    if not rows or {"site", "district"} - set(rows[0]):
        raise SiteError("need columns: site, district (and optionally name, morning_check_by)")
    out: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    for n, raw in enumerate(rows, start=2):
        r = {k: (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
        site, district = r.get("site", ""), r.get("district", "")
        by, name = r.get("morning_check_by", ""), r.get("name", "")
        for value, what in ((site, "site"), (district, "district")):
            try:
                topics.check_name(value, what)
            except ValueError as exc:
                raise SiteError(f"row {n}: {exc}") from None
        if by and not _HHMM.match(by):
            raise SiteError(f"row {n}: morning_check_by {by!r} is not HH:MM")
        if len(name) > 128:
            raise SiteError(f"row {n}: name longer than 128 characters")
        if site in seen:
            raise SiteError(f"row {n}: site {site} appears twice")
        seen.add(site)
        out.append((site, district, name, by))
    return out
