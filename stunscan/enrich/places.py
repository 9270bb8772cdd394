"""An address's place from every source found: MaxMind DB files first, the embedded data
for what none of them provides. Cached per address: a scan sees each server once per port,
a capture sees it many times."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stunscan.enrich.columns import NOWHERE, Place
from stunscan.enrich.embedded import CREDIT, EmbeddedData
from stunscan.enrich.mmdb import (
    AREA,
    ASN,
    GEO,
    Database,
    candidate_files,
    open_database,
    search_paths,
)
from stunscan.special import is_special

_RANK = {GEO: 1, AREA: 0, ASN: 2}
"""Files richer in place first: a City file's country before a Country file's."""


@dataclass(slots=True)
class Places:
    """Lookups of places by address, from the databases in order, then the embedded data."""

    databases: list[Database]
    embedded: EmbeddedData | None
    """Used for the country and AS name when no database provides them; None: not used."""
    cache: dict[str, Place] = field(default_factory=dict)
    embedded_skipped: bool = False
    """The embedded data was not needed: every address of the run is special-purpose."""

    @classmethod
    def find(cls, named: list[Path] | None, use_embedded: bool = True) -> Places:
        """The databases named (``--geoip``), or in $STUNSCAN_GEOIP, or in the usual
        folders; the embedded data where they leave the country or the AS blank.
        DatabaseError for a named path that is not a usable file."""
        paths, is_named = search_paths(named)
        databases = [open_database(path) for path in candidate_files(paths, named=is_named)]
        databases.sort(key=lambda d: min((_RANK[k] for k in d.provides), default=3))
        provided = {kind for database in databases for kind in database.provides}
        needs_embedded = use_embedded and not {GEO, ASN} <= provided
        return cls(databases, EmbeddedData() if needs_embedded else None)

    @property
    def provided(self) -> set[str]:
        return {kind for database in self.databases for kind in database.provides}

    def place(self, ip: str) -> Place:
        found = self.cache.get(ip)
        if found is None:
            found = self.cache[ip] = self._look_up(ip)
        return found

    def _look_up(self, ip: str) -> Place:
        place = NOWHERE
        for database in self.databases:
            place = place.merged(database.place(ip))
        if self.embedded is not None and not is_special(ip):
            extra = self.embedded.place(ip)
            provided = self.provided
            if GEO in provided:
                extra = Place(as_org=extra.as_org)
            if ASN in provided:
                extra = Place(geo=extra.geo)
            place = place.merged(extra)
        return place

    def preload(self) -> None:
        """Load the embedded data now (before a scan forks its writer)."""
        if self.embedded is not None:
            self.embedded.load()

    def note(self) -> str:
        """Which data fills which columns, and how to get AS numbers if missing."""
        parts = []
        by_kind: dict[str, list[str]] = {}
        for database in self.databases:
            for kind in database.provides:
                by_kind.setdefault(kind, []).append(database.label)
        for kind in (GEO, AREA, ASN):
            if kind in by_kind:
                parts.append(f"{kind} from {', '.join(by_kind[kind])}")
        provided = set(by_kind)
        if self.embedded is not None:
            kinds = (("geo", GEO), ("AS names", ASN))
            embedded = [name for name, kind in kinds if kind not in provided]
            parts.append(f"{' and '.join(embedded)} from the {CREDIT}")
        if ASN not in provided:
            parts.append(
                "asn empty: no AS numbers without an ASN MaxMind DB (GeoLite2-ASN, DB-IP ASN"
                " Lite or IPinfo Lite: --geoip FILE)"
            )
        if self.embedded_skipped and not self.databases:
            return "no place data: every target is a special-purpose address (--geoip FILE)"
        if not parts:
            return "no place data (--no-geoip)"
        return "; ".join(parts)
