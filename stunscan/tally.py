"""The report's per-server figures, shared by ``stunscan pcap`` and ``stunscan scan``."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field

from stunscan.enrich.columns import Enrichment
from stunscan.record import Record

TOP = 5


class ServerTally:
    """The report's per-server figures: each responding server counted once, with the
    amplification, family and SOFTWARE of the response that first showed it."""

    def __init__(self) -> None:
        self.servers: set[bytes] = set()
        self.factors: list[float] = []
        self.families: Counter[int] = Counter()
        self.software: Counter[str] = Counter()
        self.countries: Counter[str] = Counter()
        self.ases: Counter[str] = Counter()
        self.placed: set[str] = set()
        """Addresses whose place is counted (each once, whatever its ports and messages)."""

    def add(self, server: bytes, record: Record) -> None:
        self.servers.add(server)
        self.count(record)

    def count(self, record: Record) -> None:
        """The figures of a server's first response (already in :attr:`servers`)."""
        self.figures(record.amplification, record.family, record.software())

    def figures(self, amplification: float, family: int, software: str) -> None:
        """The same from the figures themselves (see stunscan.csvrow)."""
        self.factors.append(amplification)
        self.families[family] += 1
        if software:
            self.software[software] += 1

    def place(self, ip: str, enrichment: Enrichment) -> None:
        """Count a server address's country and AS, once per address."""
        if ip in self.placed:
            return
        self.placed.add(ip)
        self.count_place(enrichment)

    def count_place(self, enrichment: Enrichment) -> None:
        """The same for a caller that knows the address is new."""
        place = enrichment.place
        if place.geo:
            self.countries[place.geo] += 1
        as_text = place.as_text()
        if as_text:
            self.ases[as_text] += 1

    def add_places(self, other: ServerTally) -> None:
        """Another tally's places (the scan's writer counts them apart from the sniffer)."""
        self.countries.update(other.countries)
        self.ases.update(other.ases)


@dataclass(slots=True)
class Summary:
    """The report's own terms: servers per family, amplification, top SOFTWARE, countries
    and ASes."""

    servers_ipv4: int
    servers_ipv6: int
    mean_amplification: float | None
    median_amplification: float | None
    top_software: list[tuple[str, int]]
    top_countries: list[tuple[str, int]] = field(default_factory=list)
    top_ases: list[tuple[str, int]] = field(default_factory=list)
    enrichment_note: str = ""
    """Which data filled the enrichment columns (stunscan.enrich), one line."""


def summarize(tally: ServerTally) -> Summary:
    """Per responding server, as the report counts: one amplification factor each."""
    factors = tally.factors
    return Summary(
        tally.families[4],
        tally.families[6],
        statistics.fmean(factors) if factors else None,
        statistics.median(factors) if factors else None,
        tally.software.most_common(TOP),
        tally.countries.most_common(TOP),
        tally.ases.most_common(TOP),
    )
