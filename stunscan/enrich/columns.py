"""What enrichment adds to a row: the eight report columns and the AS organisation.

Kept free of any database or DNS code, so that ``stunscan.record`` can take it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EMPTY_COLUMNS = ",,stun,,,,,,,,"
"""The cells from the end of ``port`` to the start of ``transaction_id`` in a row made
without enrichment (hostname, tag, asn, geo, region, city, naics, hostname_source, sector).
No cell before them is ever quoted or holds a comma (timestamp, severity, ip, protocol,
port), so the first occurrence in a CSV line is always these."""

PTR_SOURCE = "ptr"
"""hostname_source of a name from a reverse (PTR) lookup of the address."""
USER_SOURCE = "user"
"""hostname_source of the name the user typed (``stunscan probe NAME``)."""


@dataclass(frozen=True, slots=True)
class Place:
    """Where an address is and who routes it, as far as the data knows ("" / None: unknown)."""

    geo: str = ""
    """ISO 3166-1 alpha-2 country code."""
    region: str = ""
    """The first subdivision's name (state, province...)."""
    city: str = ""
    asn: int | None = None
    as_org: str = ""
    """The AS's organisation (JSON only: the report has no column for it)."""

    def merged(self, other: Place) -> Place:
        """This place, its blanks filled from ``other``."""
        return Place(
            self.geo or other.geo,
            self.region or other.region,
            self.city or other.city,
            self.asn if self.asn is not None else other.asn,
            self.as_org or other.as_org,
        )

    def as_text(self) -> str:
        """'AS64500 Example' / 'Example' / 'AS64500' / '' (for tables and tallies)."""
        number = f"AS{self.asn}" if self.asn is not None else ""
        return " ".join(part for part in (number, self.as_org) if part)


NOWHERE = Place()


@dataclass(frozen=True, slots=True)
class Enrichment:
    """The eight enrichment columns of one row, raw (made safe where they are written)."""

    place: Place = field(default=NOWHERE)
    hostname: str = ""
    hostname_source: str = ""
    naics: int = 0
    sector: str = ""

    def cells(self) -> tuple[str, str, str, str, str, str, str, str]:
        """hostname, asn, geo, region, city, naics, hostname_source, sector."""
        place = self.place
        return (
            self.hostname,
            "" if place.asn is None else str(place.asn),
            place.geo,
            place.region,
            place.city,
            str(self.naics),
            self.hostname_source,
            self.sector,
        )

    def csv_text(self) -> str:
        """The cells from hostname to sector, tag included, as a CSV line holds them
        (each made safe and quoted by ``record.csv_field``): what replaces
        :data:`EMPTY_COLUMNS`' inside, for the scan's ready-made lines."""
        from stunscan.record import csv_field

        hostname, asn, geo, region, city, naics, source, sector = self.cells()
        return ",".join(
            (csv_field(hostname), "stun", asn, csv_field(geo), csv_field(region),
             csv_field(city), naics, csv_field(source), csv_field(sector))
        )  # fmt: skip

    def as_json(self) -> dict[str, object]:
        """What JSON has beyond the columns: the AS organisation (null when unknown)."""
        return {"as_org": self.place.as_org or None}


def fill_line(line: str, columns: str) -> str:
    """A CSV line made without enrichment with ``columns`` (:meth:`Enrichment.csv_text`) in
    place of its empty ones."""
    head, found, tail = line.partition(EMPTY_COLUMNS)
    if not found:
        raise ValueError("not a report line made without enrichment")
    return f"{head},{columns},{tail}"
