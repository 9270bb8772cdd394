"""The scan's writer: a process of its own that fills the enrichment columns and writes
the rows, so that nothing of enrichment runs in the sniffer's receive loop.

The sniffer makes each answer's CSV line from the ring's bytes with the enrichment columns
empty (``rows.py``, ``Answer.line``) and sends a batch at a time down a pipe: the lines as
one text, the servers' packed addresses as one bytes, and the answers themselves where a
full record is wanted (JSON lines, the table's first rows). Here each line gets its
server's columns (one lookup per server, not per port; the CSV text made once per place)
and goes to the CSV; records are decoded, enriched and written as JSON. (When nothing
depends on the address, no place data for the targets and no reverse lookups, there is no
writer: the sniffer's rows hold the one enrichment as they are made.) With ``--ptr`` a
row waits for its reverse lookup at most the timeout (``stunscan.enrich.stream``) while
the pipe keeps being read. The countries
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
    """What the sniffer sends per batch of answers: few objects, so that pickling and
    the pipe cost the sniffer about what writing the lines to a file did."""

    text: str
    """The CSV lines, made without enrichment, joined ("" if no CSV is written)."""
    sources: bytes
    """Each answer's server address, packed, one after another, in the order of the lines."""
    sizes: bytes
    """Each address's length (4 or 16), one byte per answer."""
    answers: list[Answer] = field(default_factory=list)
    """The answers a full record is made of (JSON, the table's first rows), in order."""

    def addresses(self) -> list[bytes]:
        blob, sizes = self.sources, self.sizes
        if not sizes.strip(b"\x04"):  # IPv4 alone: the usual batch
            return [blob[at : at + 4] for at in range(0, len(blob), 4)]
        out = []
        at = 0
        for size in sizes:
            out.append(blob[at : at + size])
            at += size
        return out


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

    texts: dict[int, str] = {}
    """The CSV text of each distinct enrichment (the enricher shares them by place)."""

    def new_server(source: bytes) -> Enrichment:
        """A server not seen before: its enrichment (without hostname), counted."""
        counted.add(source)
        enrichment = enricher.enrichment(_ip(source))
        places.count_place(enrichment)
        return enrichment

    constant = enricher.constant
    constant_text = constant.csv_text() if constant is not None else ""

    def lines_now(lines: list[str], sources: list[bytes]) -> None:
        """Without reverse lookups a line is complete at once: the batch's lines out
        together, each server's columns made once (a scan of N ports sees it N times),
        or, with nothing that depends on the address, the same columns for all."""
        assert csv_writer is not None
        if constant is not None:
            out = [fill_line(line, constant_text) for line in lines]
            out.append("")
            csv_writer.stream.write("\n".join(out))
            return
        out = []
        for line, source in zip(lines, sources, strict=True):
            text = columns.get(source)
            if text is None:
                enrichment = new_server(source)
                text = texts.get(id(enrichment))
                if text is None:
                    text = texts[id(enrichment)] = enrichment.csv_text()
                columns[source] = text
            out.append(fill_line(line, text))
        out.append("")
        csv_writer.stream.write("\n".join(out))

    stream = enricher.stream(write)
    flushed = time.monotonic()
    while True:
        deadline = stream.next_deadline()
        wait = FLUSH_EVERY if deadline is None else max(0.0, deadline - time.monotonic())
        if channel.poll(min(wait, FLUSH_EVERY)):
            batch: Batch | None = channel.recv()
            if batch is None:
                break
            sources = batch.addresses() if constant is None else []
            lines = batch.text.split("\n")[:-1] if batch.text else []
            if lines and enricher.ptr is None:
                lines_now(lines, sources)
            elif constant is None:
                for source in sources:  # every server counted, whatever is written
                    if source not in counted:
                        new_server(source)
            if lines and enricher.ptr is not None:
                for line, source in zip(lines, sources, strict=True):
                    stream.put(_ip(source), line + "\n")
            for answer in batch.answers:
                stream.put(answer.ip, answer)
        stream.pump()
        now = time.monotonic()
        if now - flushed > FLUSH_EVERY:
            _flush(csv_writer, json_writer)
            flushed = now
    stream.close()
    _flush(csv_writer, json_writer)
    places.placed.clear()  # the parent wants the counts, not every address
    result.send(WriterResult(places, shown, enricher.note()))
    result.close()
    enricher.close()


def _ip(source: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(source) == 16 else socket.AF_INET, source)


def _flush(*writers: Any) -> None:
    for writer in writers:
        if writer is not None:
            writer.flush()
