"""``stunscan pcap``: read captures, run the analyser, stream rows to the writers.

Kept apart from the CLI so that the CLI only parses options, and apart from ``pcap.py`` so
that the analyser knows nothing of files, terminals or output formats.
"""

from __future__ import annotations

import heapq
import stat
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from rich.console import Console

from stunscan import csvrow, roles
from stunscan import protocol as proto
from stunscan.capture.files import CaptureError, is_capture
from stunscan.capture.stream import TCP_BUFFER_BUDGET
from stunscan.enrich.columns import Enrichment, fill_line
from stunscan.enrich.enricher import Enricher
from stunscan.pcap.analyzer import Analyzer
from stunscan.pcap.feed import PcapFeed
from stunscan.pcap.filters import ReportFilter
from stunscan.pcap.parallel import analyse_in_parallel, plan
from stunscan.pcap.progress import RunProgress
from stunscan.pcap.sighting import Sighting, ip_text, row_fields
from stunscan.record import CSVWriter, JSONLinesWriter, Record, enrich_cells, open_output
from stunscan.render.records import records_table, summary_panel
from stunscan.tally import summarize
from stunscan.text import printable

INTERRUPTED = 130
"""The exit status of a run Ctrl-C cut short (128 + SIGINT), as shells report it."""
NOTHING_TO_READ = 1
"""The exit status when the inputs hold no capture at all."""
FLUSH_EVERY = 0.25
"""Seconds between flushes of the CSV (a line each time would cost more than making it;
a capture read from a FIFO still shows its rows as they come)."""


class InputError(Exception):
    """An input the user named that cannot be analysed (one line, exit 2)."""


class OutputError(Exception):
    """Writing the report failed (its cause, an OSError, is the user's to see)."""


def _ignore(message: str) -> None:
    pass


def capture_files(
    inputs: list[str], warn: Callable[[str], None] = _ignore, *, urls: bool = False
) -> list[Path | str]:
    """The captures named, in order, folders expanded (recognised by magic number, not
    name). A file in a folder that cannot be read is left out (``warn`` hears why), as is
    a folder with no capture; a file named that cannot be, or a URL without ``urls``
    (read by a Dask cluster only), is an InputError. A FIFO is kept: read as a stream."""
    files: list[Path | str] = []
    for item in inputs:
        if "://" in item:
            if not urls:
                raise InputError(f"{printable(item)}: a URL is read only with --cluster")
            from stunscan.pcap.cluster import remote_files

            try:
                found = remote_files(item)
            except (OSError, ValueError, ImportError) as exc:
                raise InputError(f"cannot read {printable(item)}: {exc}") from None
            if not found:
                warn(f"no pcap or pcapng capture in {printable(item)}")
            files.extend(found)
            continue
        path = Path(item)
        if path.is_dir():
            found_here: list[Path | str] = []
            for candidate in sorted(p for p in path.rglob("*") if p.is_file()):
                try:
                    if _is_capture_file(candidate):
                        found_here.append(candidate)
                except InputError as exc:
                    warn(str(exc))
            if not found_here:
                warn(f"no pcap or pcapng capture in {printable(str(path))}")
            files.extend(found_here)
        elif path.is_file():
            if not _is_capture_file(path):
                raise InputError(f"{printable(str(path))} is not a pcap or pcapng capture")
            files.append(path)
        elif path.exists():
            kind = _special_kind(path)
            if kind != "FIFO":
                raise InputError(f"{printable(str(path))} is a {kind}, not a capture file")
            files.append(path)
        else:
            raise InputError(f"no such file or folder: {printable(str(path))}")
    return files


def _special_kind(path: Path) -> str:
    mode = path.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    return "special file"


def is_stream(path: Path | str) -> bool:
    """A FIFO (``tcpdump -w - | stunscan pcap /dev/stdin``): read once, in order."""
    return isinstance(path, Path) and not path.is_file()


def _is_capture_file(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return is_capture(handle.read(4))
    except OSError as exc:
        raise InputError(f"cannot read {printable(str(path))}: {exc.strerror or exc}") from None


def _size(path: Path | str) -> int:
    try:
        return path.stat().st_size if isinstance(path, Path) and not is_stream(path) else 0
    except OSError:
        return 0


def run_capture_analysis(
    inputs: list[str],
    csv_out: str | None,
    json_out: str | None,
    all_messages: bool,
    table_rows: int,
    console: Console,
    errors: Console,
    workers: int = 1,
    tcp_buffer: int = TCP_BUFFER_BUDGET,
    report_filter: ReportFilter | None = None,
    sort: str | None = None,
    cluster: str | None = None,
    chunk_bytes: int | None = None,
    credentials: proto.Credentials | None = None,
    enricher: Enricher | None = None,
) -> int:
    """Analyse every capture; returns the number of records written.

    ``report_filter`` decides which responders are rows and which count (servers only by
    default); ``sort`` ('amplification') puts the table's rows largest first, chosen among
    all rows. With ``cluster`` (a Dask scheduler's address) every file's runs are analysed
    there (see stunscan.pcap.cluster), ``chunk_bytes`` of capture per task at most. Exits
    130 when interrupted (after writing what was found), 1 when there was nothing to read.
    With ``credentials`` every record's MESSAGE-INTEGRITY is checked (JSON ``integrity``,
    and a count in the summary). ``enricher`` fills the enrichment columns (none: left
    empty).
    """
    warnings: list[str] = []
    integrity = IntegrityTally(credentials)

    def say(message: str) -> None:
        errors.print(f"stunscan: {message}", markup=False, highlight=False, soft_wrap=True)

    try:
        files = capture_files(inputs, warnings.append, urls=cluster is not None)
        if cluster is not None and any(is_stream(path) for path in files):
            raise InputError("a FIFO is read as a stream, here: not with --cluster")
        if cluster is not None and files:
            client, runs = _cluster_runs(cluster, files, all_messages, chunk_bytes, warnings)
    except InputError as exc:
        say(str(exc))
        raise SystemExit(2) from None
    if not files:
        for warning in warnings:
            say(f"warning: {warning}")
        say("no capture to analyse")
        raise SystemExit(NOTHING_TO_READ)
    analyzer = Analyzer(all_messages=all_messages, tcp_buffer=tcp_buffer)
    chosen = report_filter or ReportFilter()
    shown: list[Record] = []
    ranked: list[tuple[float, int, Record]] = []
    written = 0
    interrupted = False
    to_stdout = "-" in (csv_out, json_out)
    with ExitStack() as stack:
        if cluster is not None:
            stack.callback(client.close)
        writers: list[Any] = []
        csv_writer = CSVWriter(open_output(stack, csv_out), autoflush=False) if csv_out else None
        if csv_writer:
            writers.append(csv_writer)
        if json_out:
            writers.append(JSONLinesWriter(open_output(stack, json_out)))

        texts: dict[int, tuple[Enrichment, str]] = {}
        """The CSV text of each enrichment without a hostname (the enricher shares them by
        place; each is kept here, so that its id is never another's)."""

        def columns_text(enrichment: Enrichment) -> str:
            if enrichment.hostname:
                return enrichment.csv_text()
            known = texts.get(id(enrichment))
            if known is None:
                known = texts[id(enrichment)] = (enrichment, enrichment.csv_text())
            return known[1]

        flushed = time.monotonic()

        def write(
            item: Record | list[str] | tuple[str, str], enrichment: Enrichment | None
        ) -> None:
            """A row out, once its enrichment is complete (see stunscan.enrich.stream)."""
            nonlocal flushed
            try:
                if isinstance(item, tuple):  # (ip, CSV line) of the fast path below
                    ip, text = item
                    if enrichment is not None:
                        analyzer.tally.place(ip, enrichment)
                        text = fill_line(text, columns_text(enrichment))
                    if csv_writer:
                        csv_writer.write_line(text)
                elif isinstance(item, list):  # the CSV's cells alone (the fast path below)
                    if enrichment is not None:
                        analyzer.tally.place(item[2], enrichment)
                        enrich_cells(item, enrichment)
                    if csv_writer:
                        csv_writer.write_cells(item)
                else:
                    if enrichment is not None:
                        item.enrichment = enrichment
                        analyzer.tally.place(item.ip, enrichment)
                    for writer in writers:
                        writer.write(item)
                if csv_writer and time.monotonic() - flushed > FLUSH_EVERY:
                    csv_writer.flush()
                    flushed = time.monotonic()
            except OSError as exc:
                raise OutputError from exc

        stream = enricher.stream(write) if enricher is not None else None

        def emit(record: Record) -> None:
            nonlocal written
            written += 1
            integrity.check(record)
            if sort:
                entry = (record.amplification if record.direction == "response" else 0.0,
                         -written, record)  # fmt: skip
                if len(ranked) < table_rows:
                    heapq.heappush(ranked, entry)
                elif table_rows:
                    heapq.heappushpop(ranked, entry)
            elif len(shown) < table_rows:
                shown.append(record)
            if stream is not None:
                stream.put(record.ip, record)
            else:
                write(record, None)

        def emit_sighting(sighting: Sighting) -> None:
            """A record to report, decoded in full only where a full record is wanted
            (JSON, the table): the CSV line and the tally's figures come from csvrow."""
            nonlocal written
            rowed = not json_out and not sort and not credentials and len(shown) >= table_rows
            data = sighting.data
            made = None
            if rowed:
                ip = ip_text(sighting.src)
                made = sighting.line or csvrow.line(
                    data, sighting.time, ip, sighting.sport, sighting.transport,
                    sighting.request_size,
                )  # fmt: skip
            if made is not None:
                role = roles.response_role((data[0] << 8) | data[1], made.signed)
            else:
                role = sighting.role  # walks the bytes: once
            if not chosen.keep(sighting, all_messages, role):
                return
            counted = sighting.first and chosen.counts(role)
            if made is not None and role is not None:
                if counted:
                    family = 6 if ":" in ip else 4
                    analyzer.tally.figures(made.amplification, family, made.software)
                written += 1
                if stream is not None:
                    stream.put(ip, (ip, made.text))
                else:
                    write((ip, made.text), None)
                return
            if rowed:
                fields = row_fields(sighting, role)
                if fields is not None:
                    cells, amplification, family, software = fields
                    if counted:
                        analyzer.tally.figures(amplification, family, software)
                    written += 1
                    if stream is not None:
                        stream.put(cells[2], cells)
                    else:
                        write(cells, None)
                    return
            record = sighting.record()
            if counted:
                analyzer.tally.count(record)
            emit(record)

        total = sum(run.size for run in runs) if cluster else sum(map(_size, files))
        progress = stack.enter_context(RunProgress(errors, len(files), total))
        try:
            if cluster is not None:
                from stunscan.pcap.cluster import analyse_on_cluster

                stats, problems = analyse_on_cluster(
                    client,
                    runs,
                    analyzer.tally,
                    emit_sighting,
                    all_messages=all_messages,
                    progress=progress,
                )
                analyzer.stats.add(stats)
                warnings.extend(problems)
            else:
                for path in files:
                    assert isinstance(path, Path)  # URLs only with a cluster
                    try:
                        problem = _analyse_file(
                            path, analyzer, emit, emit_sighting, workers, progress
                        )
                    except CaptureError as exc:
                        problem = str(exc)
                    except OSError as exc:
                        problem = f"cannot read {path}: {exc.strerror or exc}"
                    if problem:
                        warnings.append(problem)
                    progress.file_done()
        except OutputError as exc:
            assert exc.__cause__ is not None
            raise exc.__cause__ from None
        except KeyboardInterrupt:
            interrupted = True
            warnings.append("interrupted: the rows and the summary cover what was read")
        analyzer.finish()
        if stream is not None:
            stream.close()
    if sort:
        shown = [record for _, _, record in sorted(ranked, reverse=True)]
    report = errors if to_stdout else console
    if not to_stdout:
        title = f"{'messages' if all_messages else 'responding servers'}: {written}"
        if written > len(shown):
            title += f" (first {len(shown)} shown; --csv or --json for all)"
        console.print(records_table(shown, title, console.width))
    summary = summarize(analyzer.tally)
    if enricher is not None:
        summary.enrichment_note = enricher.note()
        enricher.close()
    report.print(summary_panel(analyzer.stats, summary, chosen.note()))
    if credentials is not None:
        report.print(integrity.line(), markup=False, highlight=False)
        warnings.extend(integrity.problems)
    for warning in warnings:
        say(f"warning: {printable(warning)}")
    if interrupted:
        raise SystemExit(INTERRUPTED)
    return written


class IntegrityTally:
    """MESSAGE-INTEGRITY(-SHA256) of every reported message checked with the credentials
    given: each record's verdicts in its JSON (``integrity``), and the counts for the
    summary. A message no key can be made for (a long-term key with no username or realm,
    neither given nor in the message) counts as unchecked, and why is said once."""

    def __init__(self, credentials: proto.Credentials | None) -> None:
        self.credentials = credentials
        self.valid = self.invalid = self.unchecked = 0
        self.problems: list[str] = []

    def check(self, record: Record) -> None:
        if self.credentials is None or not record.message.is_stun:
            return
        try:
            verdicts = proto.integrity_verdicts(record.message.data, self.credentials)
        except ValueError as exc:
            self.unchecked += 1
            if str(exc) not in self.problems:
                self.problems.append(str(exc))
            return
        record.extra["integrity"] = dict(verdicts)
        for _, ok in verdicts:
            if ok:
                self.valid += 1
            else:
                self.invalid += 1

    def line(self) -> str:
        return (
            f"MESSAGE-INTEGRITY checked: {self.valid} valid, {self.invalid} INVALID;"
            f" {self.unchecked} messages with no key to check"
        )


def _analyse_file(
    path: Path,
    analyzer: Analyzer,
    emit: Callable[[Record], None],
    emit_sighting: Callable[[Sighting], None],
    workers: int,
    progress: RunProgress,
) -> str | None:
    """One file, by the local process pool when it is large: why reading stopped early."""
    stream = is_stream(path)
    cuts = None if analyzer.all_messages or stream else plan(path, workers)
    if cuts:
        stats, problem = analyse_in_parallel(
            path, cuts, emit, analyzer.tally, emit_sighting, progress.advance, analyzer.tcp_buffer
        )
        analyzer.stats.add(stats)
        return problem
    feed = PcapFeed(path, analyzer, fast=not stream)
    for sightings in feed:
        for sighting in sightings:
            emit_sighting(sighting)
    progress.advance(_size(path))
    return feed.problem


def _cluster_runs(
    address: str,
    files: list[Path | str],
    all_messages: bool,
    chunk_bytes: int | None,
    warnings: list[str],
) -> tuple[Any, list[Any]]:
    """A client of the cluster and the runs to give it, before any output is opened."""
    from stunscan.pcap.cluster import CHUNK_BYTES, ClusterError, connect, plan_runs

    runs = plan_runs(files, chunk_bytes or CHUNK_BYTES, cut=not all_messages, warn=warnings.append)
    try:
        return connect(address), runs
    except ClusterError as exc:
        raise InputError(str(exc)) from None
