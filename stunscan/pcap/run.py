"""``stunscan pcap``: read captures, run the analyser, stream rows to the writers.

Kept apart from the CLI so that the CLI only parses options, and apart from ``pcap.py`` so
that the analyser knows nothing of files, terminals or output formats.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console

from stunscan.capture.files import CaptureError, is_capture
from stunscan.enrich.columns import Enrichment
from stunscan.enrich.enricher import Enricher
from stunscan.pcap.analyzer import Analyzer
from stunscan.pcap.feed import PcapFeed
from stunscan.pcap.parallel import analyse_in_parallel, plan
from stunscan.pcap.sighting import Sighting, row_fields
from stunscan.record import CSVWriter, JSONLinesWriter, Record, enrich_cells, open_output
from stunscan.render.records import records_table, summary_panel
from stunscan.tally import summarize


class InputError(Exception):
    """An input the user named that cannot be analysed (one line, exit 2)."""


def capture_files(inputs: list[str]) -> list[Path]:
    """The capture files named, folders expanded (recognised by magic number, not name)."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
            files.extend(p for p in candidates if _is_capture_file(p))
        elif path.is_file():
            if not _is_capture_file(path):
                raise InputError(f"{path} is not a pcap or pcapng capture")
            files.append(path)
        else:
            raise InputError(f"no such file or folder: {path}")
    return files


def _is_capture_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return is_capture(handle.read(4))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def run_capture_analysis(
    inputs: list[str],
    csv_out: str | None,
    json_out: str | None,
    all_messages: bool,
    table_rows: int,
    console: Console,
    errors: Console,
    workers: int = 1,
    enricher: Enricher | None = None,
) -> int:
    """Analyse every capture; returns the number of records written. ``enricher`` fills
    the enrichment columns (none: left empty)."""
    try:
        files = capture_files(inputs)
    except InputError as exc:
        errors.print(f"stunscan: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    analyzer = Analyzer(all_messages=all_messages)
    shown: list[Record] = []
    warnings: list[str] = []
    written = 0
    to_stdout = "-" in (csv_out, json_out)
    with ExitStack() as stack:
        writers: list[Any] = []
        csv_writer = CSVWriter(open_output(stack, csv_out)) if csv_out else None
        if csv_writer:
            writers.append(csv_writer)
        if json_out:
            writers.append(JSONLinesWriter(open_output(stack, json_out)))

        def write(item: Record | list[str], enrichment: Enrichment | None) -> None:
            """A row out, once its enrichment is complete (see stunscan.enrich.stream)."""
            if isinstance(item, list):  # the CSV's cells alone (the fast path below)
                if enrichment is not None:
                    analyzer.tally.place(item[2], enrichment)
                    enrich_cells(item, enrichment)
                if csv_writer:
                    csv_writer.write_cells(item)
                return
            if enrichment is not None:
                item.enrichment = enrichment
                analyzer.tally.place(item.ip, enrichment)
            for writer in writers:
                writer.write(item)

        stream = enricher.stream(write) if enricher is not None else None

        def emit(record: Record) -> None:
            nonlocal written
            written += 1
            if len(shown) < table_rows:
                shown.append(record)
            if stream is not None:
                stream.put(record.ip, record)
            else:
                write(record, None)

        def emit_sighting(sighting: Sighting) -> None:
            """A record to report, decoded in full only where a full record is wanted
            (JSON, the table): the CSV row and the tally's figures come from csvrow."""
            nonlocal written
            if not json_out and len(shown) >= table_rows:
                fields = row_fields(sighting)
                if fields is not None:
                    cells, amplification, family, software = fields
                    if sighting.first:
                        analyzer.tally.figures(amplification, family, software)
                    written += 1
                    if stream is not None:
                        stream.put(cells[2], cells)
                    elif csv_writer:
                        csv_writer.write_cells(cells)
                    return
            emit(analyzer.record(sighting))

        try:
            for path in files:
                cuts = None if all_messages else plan(path, workers)
                if cuts:
                    stats, problem = analyse_in_parallel(
                        path, cuts, emit, analyzer.tally, emit_sighting
                    )
                    analyzer.stats.add(stats)
                    if problem:
                        warnings.append(problem)
                    continue
                feed = PcapFeed(path, analyzer)
                for sightings in feed:
                    for sighting in sightings:
                        emit_sighting(sighting)
                if feed.problem:
                    warnings.append(feed.problem)
        except CaptureError as exc:
            warnings.append(str(exc))
        except KeyboardInterrupt:
            warnings.append("interrupted: the summary covers what was read")
        analyzer.finish()
        if stream is not None:
            stream.close()
    report = errors if to_stdout else console
    if not to_stdout:
        title = f"{'messages' if all_messages else 'responding servers'}: {written}"
        if written > len(shown):
            title += f" (first {len(shown)} shown; --csv or --json for all)"
        console.print(records_table(shown, title))
    summary = summarize(analyzer.tally)
    if enricher is not None:
        summary.enrichment_note = enricher.note()
        enricher.close()
    report.print(summary_panel(analyzer.stats, summary))
    for warning in warnings:
        errors.print(f"stunscan: warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    return written
