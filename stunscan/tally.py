"""The report's per-server figures, shared by ``stunscan pcap`` and ``stunscan scan``."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass

from stunscan.record import Record


class ServerTally:
    """The report's per-server figures: each responding server counted once, with the
    amplification, family and SOFTWARE of the response that first showed it."""

    def __init__(self) -> None:
        self.servers: set[bytes] = set()
        self.factors: list[float] = []
        self.families: Counter[int] = Counter()
        self.software: Counter[str] = Counter()

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


@dataclass(slots=True)
class Summary:
    """The report's own terms: servers per family, amplification, top SOFTWARE."""

    servers_ipv4: int
    servers_ipv6: int
    mean_amplification: float | None
    median_amplification: float | None
    top_software: list[tuple[str, int]]


def summarize(tally: ServerTally) -> Summary:
    """Per responding server, as the report counts: one amplification factor each."""
    factors = tally.factors
    return Summary(
        tally.families[4],
        tally.families[6],
        statistics.fmean(factors) if factors else None,
        statistics.median(factors) if factors else None,
        tally.software.most_common(5),
    )
