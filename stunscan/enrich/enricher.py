"""The one API ``scan``, ``pcap`` and ``probe`` share: options in, rows' enrichment out."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from stunscan.enrich.columns import NOWHERE, PTR_SOURCE, USER_SOURCE, Enrichment, Place
from stunscan.enrich.mmdb import DatabaseError
from stunscan.enrich.places import Places
from stunscan.enrich.ptr import (
    DEFAULT_TIMEOUT,
    NAME,
    PtrAnswer,
    PtrResolver,
    ResolverError,
    parse_resolver,
)
from stunscan.enrich.sectors import SectorMap, SectorMapError
from stunscan.enrich.stream import RowStream

Item = TypeVar("Item")


class EnrichError(Exception):
    """An enrichment option the user got wrong (one line, exit 2)."""


@dataclass(slots=True)
class EnrichOptions:
    """The enrichment options, as the CLI parsed them (the same for every command)."""

    geoip: list[Path] | None = None
    """Files or folders; None: $STUNSCAN_GEOIP or the usual folders."""
    use_geoip: bool = True
    sector_map: Path | None = None
    ptr: bool = False
    resolver: str | None = None
    ptr_timeout: float = DEFAULT_TIMEOUT


class Enricher:
    """Each server address's enrichment: place (cached), sector by AS, hostname by PTR."""

    def __init__(
        self,
        places: Places | None = None,
        sectors: SectorMap | None = None,
        ptr: PtrResolver | None = None,
    ) -> None:
        self.places = places
        self.sectors = sectors
        self.ptr = ptr
        self.ptr_outcomes: Counter[str] = Counter()
        self._done: dict[str, Enrichment] = {}
        self._plain: dict[Place, Enrichment] = {}
        """One Enrichment per place, shared by every address without a hostname there (a
        scan's writer makes each one's CSV text once)."""

    @classmethod
    def build(cls, options: EnrichOptions) -> Enricher:
        """From the options; EnrichError for a file or resolver that will not do."""
        if options.ptr_timeout <= 0:
            raise EnrichError("--ptr-timeout must be > 0")
        try:
            places = Places.find(options.geoip) if options.use_geoip else None
            sectors = SectorMap.read(options.sector_map) if options.sector_map else None
            server = parse_resolver(options.resolver) if options.resolver else None
        except (DatabaseError, SectorMapError, ResolverError) as exc:
            raise EnrichError(str(exc)) from None
        ptr = PtrResolver(server, options.ptr_timeout) if options.ptr else None
        return cls(places, sectors, ptr)

    @property
    def constant(self) -> Enrichment | None:
        """The one enrichment every address gets, if nothing here depends on the address
        (no place data, no reverse lookups): a writer then looks nothing up per row."""
        places = self.places
        if self.ptr is not None:
            return None
        if places is not None and (places.databases or places.embedded is not None):
            return None
        return Enrichment()

    def skip_embedded(self) -> None:
        """No address of this run is global: the embedded data has nothing to say."""
        if self.places is not None:
            self.places.embedded = None
            self.places.embedded_skipped = True

    def place(self, ip: str) -> Place:
        return NOWHERE if self.places is None else self.places.place(ip)

    def enrichment(
        self, ip: str, answer: PtrAnswer | None = None, hostname: str | None = None
    ) -> Enrichment:
        """The columns of a row from ``ip``; ``answer``: its PTR outcome if asked;
        ``hostname``: a name the user gave for it."""
        if hostname is None and answer is not None and answer.status != NAME:
            answer = None  # the same as not asked
        if hostname is None and answer is None:
            found = self._done.get(ip)
            if found is None:
                place = self.place(ip)
                found = self._plain.get(place)
                if found is None:
                    found = self._plain[place] = self._make(ip, "", "")
                self._done[ip] = found
            return found
        if hostname is not None:
            return self._make(ip, hostname, USER_SOURCE)
        assert answer is not None
        return self._make(ip, answer.name, PTR_SOURCE)

    def _make(self, ip: str, hostname: str, source: str) -> Enrichment:
        place = self.place(ip)
        sector = self.sectors.get(place.asn) if self.sectors is not None else None
        if sector is None:
            return Enrichment(place, hostname, source)
        return Enrichment(place, hostname, source, sector.naics, sector.sector)

    def stream(self, write: Callable[[Item, Enrichment], None]) -> RowStream[Item]:
        """Rows to ``write``, each once its enrichment is complete (see stream.py)."""
        ptr = self.ptr
        return RowStream(
            self.enrichment,
            ptr.lookup if ptr is not None else None,
            ptr.timeout if ptr is not None else 0.0,
            write,
            self._count,
        )

    def _count(self, outcome: str) -> None:
        self.ptr_outcomes[outcome] += 1

    def preload(self) -> None:
        if self.places is not None:
            self.places.preload()

    def note(self) -> str:
        """One line: which data filled which columns (for the summaries)."""
        parts = [self.places.note() if self.places is not None else "no place data (--no-geoip)"]
        if self.ptr is not None:
            outcomes = ", ".join(
                f"{n} {'with a name' if status == NAME else status}"
                for status, n in sorted(self.ptr_outcomes.items(), key=lambda item: -item[1])
            )
            ptr = f"hostname from PTR via {self.ptr.described()}"
            if outcomes:
                ptr += f" ({outcomes})"
            if self.ptr.problem:
                ptr += f": {self.ptr.problem}"
            parts.append(ptr)
        if self.sectors is not None:
            parts.append(f"naics and sector from {self.sectors.path}")
        return "; ".join(parts)

    def close(self) -> None:
        if self.ptr is not None:
            self.ptr.close()
