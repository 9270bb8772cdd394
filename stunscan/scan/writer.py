"""The scan's writer: a process of its own that fills the enrichment columns and writes
the rows, so that nothing of enrichment runs in the sniffer's receive loop.

The sniffer makes each answer's CSV line from the ring's bytes with the enrichment columns
empty (``rows.py``, ``Answer.line``) and sends a batch at a time down a pipe: the lines,
the servers' packed addresses, and the answers themselves where a full record is wanted
(JSON lines, the table's first rows). Here each line gets its server's columns (cached per
address: one lookup per server, not per port) and goes to the CSV; records are decoded,
enriched and written as JSON. With ``--ptr`` a row waits for its reverse lookup at most
the timeout (``stunscan.enrich.stream``) while the pipe keeps being read. The countries
and ASes of the summary are counted here; the rest of the tally stays in the sniffer.
"""

from __future__ import annotations

import signal
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from stunscan.enrich.columns import Enrichment, fill_line
from stunscan.enrich.enricher import Enricher
from stunscan.record import CSVWriter, JSONLinesWriter, Record
from stunscan.scan.answer import Answer
from stunscan.tally import ServerTally

FLUSH_EVERY = 0.25
"""As the sniffer did: rows reach their files at least this often."""


@dataclass(slots=True)
class Batch:
    """What the sniffer sends per batch of answers."""

    lines: list[str]
    """CSV lines made without enrichment (empty if no CSV is written)."""
    sources: list[bytes]
    """Each answer's server address, packed, in the order of ``lines``."""
    answers: list[Answer] = field(default_factory=list)
    """The answers a full record is made of (JSON, the table's first rows), in order."""


@dataclass(slots=True)
class WriterResult:
    """What the writer hands back when done."""

    places: ServerTally
    shown: list[Record]
    note: str


def run_writer(
    channel: Any,
    enricher: Enricher,
    csv_writer: CSVWriter | None,
    json_writer: JSONLinesWriter | None,
    table_rows: int,
    result: Any,
) -> None:
    """The writer process: batches from ``channel`` until None, then its result out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    places = ServerTally()
    shown: list[Record] = []
    columns: dict[bytes, str] = {}
    """The CSV text of each server's enrichment columns (without reverse lookups)."""
    counted: set[bytes] = set()

    def write(what: str | Answer, enrichment: Enrichment) -> None:
        """One row out, its enrichment complete (with --ptr: answered or timed out)."""
        if isinstance(what, str):
            assert csv_writer is not None
            csv_writer.stream.write(fill_line(what, enrichment.csv_text()))
            return
        record = what.record()
        record.enrichment = enrichment
        if json_writer is not None:
            json_writer.write(record)
        if len(shown) < table_rows:
            shown.append(record)

    def lines_now(batch: Batch) -> None:
        """Without reverse lookups a line is complete at once: the batch's lines out
        together, each server's columns made once (a scan of N ports sees it N times)."""
        assert csv_writer is not None
        out = []
        for line, source in zip(batch.lines, batch.sources, strict=True):
            text = columns.get(source)
            if text is None:
                text = columns[source] = enricher.enrichment(_ip(source)).csv_text()
            out.append(fill_line(line, text))
        csv_writer.stream.write("".join(out))

    stream = enricher.stream(write)
    flushed = time.monotonic()
    while True:
        deadline = stream.next_deadline()
        wait = FLUSH_EVERY if deadline is None else max(0.0, deadline - time.monotonic())
        if channel.poll(min(wait, FLUSH_EVERY)):
            batch: Batch | None = channel.recv()
            if batch is None:
                break
            for source in batch.sources:  # every server counted, whatever is written
                if source not in counted:
                    counted.add(source)
                    ip = _ip(source)
                    places.place(ip, enricher.enrichment(ip))
            if batch.lines and enricher.ptr is None:
                lines_now(batch)
            elif batch.lines:
                for line, source in zip(batch.lines, batch.sources, strict=True):
                    stream.put(_ip(source), line)
            for answer in batch.answers:
                stream.put(answer.ip, answer)
        stream.pump()
        now = time.monotonic()
        if now - flushed > FLUSH_EVERY:
            _flush(csv_writer, json_writer)
            flushed = now
    stream.close()
    _flush(csv_writer, json_writer)
    result.send(WriterResult(places, shown, enricher.note()))
    result.close()
    enricher.close()


def _ip(source: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(source) == 16 else socket.AF_INET, source)


def _flush(*writers: Any) -> None:
    for writer in writers:
        if writer is not None:
            writer.flush()
