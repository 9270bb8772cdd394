"""``--sector-map FILE``: the report's naics and sector columns by AS number.

A CSV with a header naming the columns ``asn,naics,sector`` (any order, more columns
ignored), one AS a line; ``AS64500`` or ``64500``. Shadowserver fills these from its own
data; an operator who knows their peers' industries can do the same.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stunscan.enrich.mmdb import _as_number

REQUIRED = ("asn", "naics", "sector")


class SectorMapError(Exception):
    """A sector map that cannot be read (one line, exit 2)."""


@dataclass(frozen=True, slots=True)
class Sector:
    naics: int
    sector: str


class SectorMap:
    """AS number -> (NAICS code, sector)."""

    def __init__(self, sectors: dict[int, Sector], path: Path) -> None:
        self.sectors = sectors
        self.path = path

    @classmethod
    def read(cls, path: Path) -> SectorMap:
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                return cls(_parse(csv.reader(handle), path), path)
        except OSError as exc:
            raise SectorMapError(f"cannot read {path}: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SectorMapError(f"{path}: not a CSV file ({exc})") from None

    def get(self, asn: int | None) -> Sector | None:
        return None if asn is None else self.sectors.get(asn)


def _parse(rows: Iterator[list[str]], path: Path) -> dict[int, Sector]:
    header = next(rows, None)
    if header is None:
        raise SectorMapError(f"{path}: empty (a header asn,naics,sector is needed)")
    names = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise SectorMapError(f"{path}: the header has no {', '.join(missing)} column")
    at = {name: names.index(name) for name in REQUIRED}
    sectors: dict[int, Sector] = {}
    for number, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= max(at.values()):
            raise SectorMapError(f"{path} line {number}: expected asn,naics,sector")
        asn = _as_number(row[at["asn"]])
        naics_text = row[at["naics"]].strip() or "0"
        if asn is None:
            raise SectorMapError(f"{path} line {number}: not an AS number: {row[at['asn']]!r}")
        if not naics_text.isdigit() or len(naics_text) > 6:
            raise SectorMapError(f"{path} line {number}: not a NAICS code: {naics_text!r}")
        sectors[asn] = Sector(int(naics_text), row[at["sector"]].strip())
    return sectors
