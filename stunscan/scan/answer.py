"""A valid answer to one of our probes, kept as bytes until a row or a record is asked of it.

When every target answers, the sniffer writes a row per answer. A full record decodes every
attribute, which costs more than everything else the sniffer does; the CSV row needs only
four attributes, read from the bytes (for a batch at once by ``rows.py``, else one answer
at a time by ``stunscan.csvrow``). So an answer stays bytes: the CSV and the report's tally
take :meth:`Answer.line`, and only JSON lines and the terminal table decode it in full
(:meth:`Answer.record`). ``tests/test_scan_triage.py`` holds the three to the same row.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from stunscan import codec, csvrow
from stunscan.enrich.columns import EMPTY_COLUMNS, Enrichment
from stunscan.record import Record, csv_line, enrich_cells


@dataclass(slots=True)
class Row:
    """What the sniffer's writers and tally take of an answer."""

    line: str
    """The CSV line, newline included."""
    amplification: float
    software: str


@dataclass(frozen=True, slots=True)
class Asked:
    """What every answer of one scan shares: what was asked, from where, how it is checked."""

    request_size: int
    clients: dict[int, str]
    """Our own address:port per family, for the records' client field."""
    keyed: bool
    """Answers validated by their keyed transaction ID, or (the report's zero-ID probe) by
    address only."""
    enrichment: Enrichment | None = None
    """The enrichment every answer gets when nothing of it depends on the address (no
    place data for the targets, no reverse lookups): put in the rows as they are made.
    None: the rows leave it empty for the scan's writer process to fill."""
    columns: str = EMPTY_COLUMNS
    """``enrichment``'s cells from port to transaction_id, as rows.py writes them."""


@dataclass(slots=True)
class Answer:
    """Where a valid answer came from, which probe it answers, and its UDP payload."""

    time: float
    version: int
    source: bytes
    """The server's address, packed (4 or 16 bytes)."""
    port: int
    """The port probed: the row's port."""
    from_port: int
    """The port the answer came from; another than ``port`` for a server behind a NAT
    that changes ports (kept, flagged)."""
    payload: bytes
    probe: int | None
    asked: Asked
    row: Row | None = field(default=None, compare=False)
    """Its CSV line and report figures, once made (a batch makes them at once: rows.py)."""

    @property
    def ip(self) -> str:
        return socket.inet_ntop(
            socket.AF_INET6 if self.version == 6 else socket.AF_INET, self.source
        )

    def line(self) -> Row:
        """The CSV line, amplification and SOFTWARE: what the writers and tally take."""
        if self.row is None:
            cells, amplification, software = self.cells()
            if self.asked.enrichment is not None:
                enrich_cells(cells, self.asked.enrichment)
            self.row = Row(csv_line(cells), amplification, software)
        return self.row

    def cells(self) -> tuple[list[str], float, str]:
        """(the report row's cells, amplification, SOFTWARE), straight from the bytes."""
        made = csvrow.cells(
            self.payload, self.time, self.ip, self.port, "udp", self.asked.request_size,
            len(self.payload),
        )  # fmt: skip
        assert made is not None  # only a STUN or classic message is a valid answer
        return made

    def record(self) -> Record:
        """The whole record, every attribute decoded: for JSON lines and the table."""
        message = codec.decode(self.payload)
        assert message is not None and message.is_stun
        extra: dict[str, Any] = {
            "validation": "transaction-id" if self.asked.keyed else "address-only",
        }
        if self.probe is not None:
            extra["probe"] = self.probe
        if self.from_port != self.port:
            extra["answered_from_port"] = self.from_port
        record = Record(
            self.time,
            self.ip,
            self.port,
            "udp",
            message,
            len(self.payload),
            self.asked.request_size,
            self.asked.clients.get(self.version, ""),
            extra,
        )
        record.enrichment = self.asked.enrichment
        return record
