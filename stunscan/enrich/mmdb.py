"""MaxMind DB files: where to find them, what each holds, one address's place from them.

Several producers write the format with their own schemas: MaxMind's GeoLite2 / GeoIP2
City, Country and ASN, DB-IP's Lite files (GeoIP2's schema), IPinfo Lite (flat:
``country_code``, ``asn`` as "AS64500", ``as_name``), ip-location-db (flat:
``country_code``, ``state1``, ``city``; ASN files with GeoLite2-ASN's field names). A file
is told apart by its metadata's ``database_type`` where that is one we know, else by the
fields of its first records; never by its name. A record is read by the fields it has, so
a file of a schema we did not foresee still gives whatever of these it holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stunscan.enrich.columns import Place

DEFAULT_FOLDERS = (
    "/usr/share/GeoIP",
    "/var/lib/GeoIP",
    "/usr/local/share/GeoIP",
    "~/.local/share/GeoIP",
)
ENVIRONMENT = "STUNSCAN_GEOIP"
METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
METADATA_WINDOW = 128 * 1024
"""The metadata lies in a file's last 128 KiB (MaxMind DB format 2.0)."""
SAMPLE_RECORDS = 64
GEO, AREA, ASN = "geo", "region and city", "asn"
"""What a file can provide: the country, the region and city, the AS."""
_KNOWN_TYPES = (
    # (a word in database_type, lower case) -> what the file holds
    ("city", (GEO, AREA)),
    ("country", (GEO,)),
    ("asn", (ASN,)),
    ("isp", (ASN,)),
)


class DatabaseError(Exception):
    """A file the user named that is not a usable MaxMind DB (one line, exit 2)."""


@dataclass(slots=True)
class Database:
    """One open MaxMind DB file and what it provides."""

    path: Path
    database_type: str
    provides: tuple[str, ...]
    reader: Any

    def place(self, ip: str) -> Place:
        try:
            record = self.reader.get(ip)
        except ValueError:  # an IPv6 address in an IPv4-only file
            return Place()
        return place_of(record)

    @property
    def label(self) -> str:
        return f"{self.database_type or 'MMDB'} ({self.path})"


def candidate_files(paths: Iterable[str | Path], *, named: bool) -> list[Path]:
    """The MaxMind DB files among ``paths`` (files, or folders searched one level deep),
    recognised by their metadata marker. ``named``: the user gave these paths, so a
    missing one or a named file that is not a MaxMind DB is an error."""
    found: list[Path] = []
    for item in paths:
        path = Path(item).expanduser()
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and _is_mmdb(p))
            if not inside and named:
                raise DatabaseError(f"no MaxMind DB file in {path}")
            found.extend(inside)
        elif path.is_file():
            if not _is_mmdb(path):
                if named:
                    raise DatabaseError(f"{path} is not a MaxMind DB file")
                continue
            found.append(path)
        elif named:
            raise DatabaseError(f"no such file or folder: {path}")
    return found


def search_paths(named: list[Path] | None) -> tuple[list[str | Path], bool]:
    """Where to look: ``--geoip`` if given, else $STUNSCAN_GEOIP (colon-separated), else
    the usual folders (GeoIP update tools and distributions put them there). Returns the
    paths and whether the user named them."""
    if named:
        return list(named), True
    from_environment = os.environ.get(ENVIRONMENT, "")
    if from_environment:
        return [p for p in from_environment.split(os.pathsep) if p], True
    return list(DEFAULT_FOLDERS), False


def _is_mmdb(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - METADATA_WINDOW))
            return METADATA_MARKER in handle.read()
    except OSError:
        return False


def open_database(path: Path) -> Database:
    """Open ``path`` (memory-mapped, through the C extension where installed) and learn
    what it provides."""
    import maxminddb

    try:
        reader = maxminddb.open_database(str(path))
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise DatabaseError(f"cannot read {path}: {exc}") from None
    database_type = str(reader.metadata().database_type or "")
    known = set(_provides_by_type(database_type)) | set(_provides_by_fields(reader))
    provides = tuple(kind for kind in (GEO, AREA, ASN) if kind in known)
    return Database(path, database_type, provides, reader)


def _provides_by_type(database_type: str) -> tuple[str, ...]:
    lowered = database_type.lower()
    for word, provides in _KNOWN_TYPES:
        if word in lowered:
            return provides
    return ()


def _provides_by_fields(reader: Any) -> tuple[str, ...]:
    """What the first records hold (for a type we do not know, or one that holds more
    than its name says, as IPinfo's country_asn)."""
    seen: set[str] = set()
    for count, (_network, record) in enumerate(_records(reader)):
        if count >= SAMPLE_RECORDS:
            break
        place = place_of(record)
        if place.geo:
            seen.add(GEO)
        if place.region or place.city:
            seen.add(AREA)
        if place.asn is not None or place.as_org:
            seen.add(ASN)
    return tuple(kind for kind in (GEO, AREA, ASN) if kind in seen)


def _records(reader: Any) -> Iterator[tuple[Any, Any]]:
    try:
        yield from iter(reader)
    except (ValueError, TypeError, KeyError):  # a damaged tree: what was read counts
        return


def place_of(record: Any) -> Place:
    """A record of any of the schemas above as a place; whatever is missing or of the
    wrong type stays blank (a file is data from elsewhere: never trusted to be well made)."""
    if not isinstance(record, dict):
        return Place()
    geo = _iso_code(record.get("country")) or _text(record.get("country_code"))
    if not geo:
        geo = _iso_code(record.get("registered_country"))
    region = ""
    subdivisions = record.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions:
        region = _name(subdivisions[0])
    region = region or _text(record.get("state1")) or _text(record.get("region"))
    city = record.get("city")
    city_name = _name(city) if isinstance(city, dict) else _text(city)
    asn = _as_number(record.get("autonomous_system_number"))
    if asn is None:
        asn = _as_number(record.get("asn"))
    as_org = _text(record.get("autonomous_system_organization")) or _text(record.get("as_name"))
    return Place(geo.upper() if len(geo) == 2 else geo, region, city_name, asn, as_org)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _iso_code(value: Any) -> str:
    return _text(value.get("iso_code")) if isinstance(value, dict) else ""


def _name(value: Any) -> str:
    """A GeoIP2 ``names`` map's English name, else any."""
    if not isinstance(value, dict):
        return ""
    names = value.get("names")
    if not isinstance(names, dict) or not names:
        return ""
    english = _text(names.get("en"))
    if english:
        return english
    return next((_text(name) for name in names.values() if _text(name)), "")


def _as_number(value: Any) -> int | None:
    """64500 from 64500 or "AS64500" (IPinfo); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**32 else None
    if isinstance(value, str):
        digits = value.strip().upper().removeprefix("AS")
        if digits.isdigit():
            number = int(digits)
            return number if number < 2**32 else None
    return None
