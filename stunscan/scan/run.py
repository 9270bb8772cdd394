"""``stunscan scan``: plan the target space, start the sniffer, send, cool down, summarise.

The sniffer runs in a forked process with its own sockets' copy of nothing but the scan's
parameters; the sender runs here. They share no state about the probes: only a few
counters in shared memory, for the progress display. Ctrl-C stops the sender; the
cooldown still runs (a second Ctrl-C cuts it short) and the sniffer drains what the kernel
holds before it writes the summary, so nothing received is lost.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from rich.console import Console
from rich.live import Live

from stunscan.enrich.enricher import Enricher, EnrichOptions
from stunscan.record import CSVWriter, JSONLinesWriter, Record, open_output
from stunscan.scan import display
from stunscan.scan.answer import Answer, Asked
from stunscan.scan.frames import WIRE_OVERHEAD, FrameBuilder, build_template
from stunscan.scan.order import CyclicOrder
from stunscan.scan.pcapout import PcapWriter
from stunscan.scan.route import Route, RouteError, default_route_to, find_route
from stunscan.scan.sender import Sender, SendStats, open_send_socket
from stunscan.scan.sniffer import (
    COUNTERS,
    Capture,
    ReceiveStats,
    Sniffer,
    Validator,
    open_capture,
)
from stunscan.scan.targets import (
    SPECIAL_PURPOSE,
    TargetError,
    TargetSpace,
    address_text,
    blocklist,
    gather,
    merge,
    parse_target,
    read_exclusions,
    special_purpose_parts,
    subtract,
)
from stunscan.scan.txid import TransactionKey
from stunscan.scan.writer import Batch, WriterResult, run_writer
from stunscan.tally import ServerTally, summarize
from stunscan.text import endpoint_text

NEEDS_PRIVILEGE = (
    "stunscan scan needs CAP_NET_RAW (and CAP_NET_ADMIN for its receive buffer) to send and"
    " capture raw packets: run it as root, or grant them with"
    " 'setcap cap_net_raw,cap_net_admin+eip' on the Python interpreter"
)
F_SETPIPE_SZ = 1031
LOG_EVERY = 5.0
SENDER_START = 0.2
"""Seconds given to extra sender processes to fork and set up before all start together."""


class ScanError(Exception):
    """Something the user can fix; one line, exit 2."""


class ScanInterrupted(Exception):
    """Ctrl-C ended the scan early; what it received is written (exit 130, as a shell
    expects of a command SIGINT stopped)."""


@dataclass(slots=True)
class ScanOptions:
    """Everything ``stunscan scan`` was asked, as the CLI parsed it."""

    targets: list[str]
    ports: tuple[int, ...] = (3478,)
    input_files: list[Path] = field(default_factory=list)
    exclude_files: list[Path] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)
    seed: int | None = None
    shards: int = 1
    shard: int = 0
    max_targets: int | None = None
    probe: str = "binding"
    probes: int = 1
    rate: float = 10_000.0
    bandwidth: float | None = None
    cooldown: float = 3.0
    interface: str | None = None
    source_ips: list[str] = field(default_factory=list)
    source_ports: tuple[int, int] = (0, 0)
    next_hop_mac: str | None = None
    csv_out: str | None = None
    json_out: str | None = None
    pcap_out: str | None = None
    table_rows: int = 20
    senders: int = 1
    allow_default_route: bool = False
    """Send to special-purpose ranges (``--allow``) even through the default route."""


@dataclass(slots=True)
class ScanPlan:
    """The target space after the blocklist, and the walk through it."""

    space: TargetSpace
    order: CyclicOrder
    seed: int
    requested: int
    """Addresses named before the blocklist and exclusions."""

    def walk(self, options: ScanOptions) -> Iterator[int]:
        return self.order.walk(options.shards, options.shard)


def plan_scan(options: ScanOptions) -> ScanPlan:
    """Parse targets and exclusions; number the space; fix the order from the seed."""
    if not 0 <= options.shard < options.shards:
        raise ScanError("--shard must be 0 to --shards - 1")
    try:
        targets, pinned = gather(options.targets, options.input_files)
        blocked = blocklist(options.allow, read_exclusions(options.exclude_files))
    except TargetError as exc:
        raise ScanError(str(exc)) from None
    if not targets and not pinned:
        raise ScanError("no targets: give addresses, CIDRs or ranges, --input-file, or - for stdin")
    space = TargetSpace.build(targets, options.ports, blocked, pinned)
    requested = TargetSpace.build(targets, options.ports, [], pinned).addresses
    if space.size == 0:
        raise ScanError(
            f"nothing to scan: all {requested} addresses are blocklisted or excluded"
            " (special-purpose ranges need --allow CIDR)"
        )
    seed = options.seed if options.seed is not None else secrets.randbits(48)
    return ScanPlan(space, CyclicOrder.for_space(space.size, seed), seed, requested)


def dry_run(plan: ScanPlan, options: ScanOptions, out: IO[str]) -> int:
    """Print this shard's targets in scan order, one ``address:port`` a line."""
    count = 0
    for index in plan.walk(options):
        if count == options.max_targets:
            break
        version, number, port = plan.space[index]
        out.write(endpoint_text(address_text(version, number), port) + "\n")
        count += 1
    out.flush()
    return count


def _source_for(version: int, options: ScanOptions) -> str | None:
    for source in options.source_ips:
        if (":" in source) == (version == 6):
            return source
    return None


def _routes(space: TargetSpace, options: ScanOptions) -> dict[int, Route]:
    routes = {}
    for version in sorted(space.versions()):
        target = space.first_address(version)
        assert target is not None
        try:
            routes[version] = find_route(
                target, options.interface, _source_for(version, options), options.next_hop_mac
            )
        except RouteError as exc:
            raise ScanError(str(exc)) from None
    return routes


def _keep_labs_in_the_lab(space: TargetSpace, options: ScanOptions) -> None:
    """A special-purpose range lifted by ``--allow`` is a lab's: it must be reached through
    a route of its own (a connected network, a more specific route). If the kernel would
    send it out of the default route, the probes would leave for the Internet (run in the
    host's namespace by mistake): refuse, unless ``--allow-default-route`` says it is meant.
    The first and last address of each lifted part are looked up (nothing is sent)."""
    for part, name in special_purpose_parts(space.spans):
        for number in dict.fromkeys((part.first, part.last)):
            target = address_text(part.version, number)
            try:
                route = default_route_to(
                    target, options.interface, _source_for(part.version, options)
                )
            except RouteError as exc:
                raise ScanError(str(exc)) from None
            if route is not None:
                raise ScanError(
                    f"{target} ({name}, lifted by --allow) would leave by the default route"
                    f" ({route}): a lab range needs a route of its own; add"
                    " --allow-default-route if it is meant to go there"
                )


def _source_ports(options: ScanOptions) -> tuple[int, int]:
    low, high = options.source_ports
    if low == 0:
        low = high = 32768 + secrets.randbelow(28000)
    return low, high


@dataclass(slots=True)
class ScanResult:
    """What the sniffer hands back when it is done."""

    stats: ReceiveStats
    tally: ServerTally
    """The report's figures; its set of servers stays empty: every answer the sniffer
    writes is a server not seen before (``written`` counts them)."""
    shown: list[Record]
    written: int


def _sniff(
    captures: list[Capture],
    validator: Validator,
    publish: Any,
    out: Any,
    csv_writer: CSVWriter | None,
    json_writer: JSONLinesWriter | None,
    with_sources: bool,
    pcap: PcapWriter | None,
    table_rows: int,
    stop: Any,
    channel: Any,
) -> None:
    """The forked sniffer process: receive, hand rows on, report back through ``channel``.

    A row's CSV line comes from the answer's bytes. When its enrichment depends on the
    server's address, the line leaves it empty and goes to the writer process (``out``,
    ``writer.py``) with the servers' addresses (``with_sources``); the answers that JSON
    lines and the table's first rows need whole go as they are. When nothing depends on
    the address (``out`` None), the rows already hold it (``Asked.enrichment``) and are
    written here, as before enrichment existed: a lab's or a benchmark's scan pays
    nothing for it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tally = ServerTally()
    shown: list[Record] = []
    written = detailed = 0
    with_csv = csv_writer is not None

    def emit(answers: list[Answer]) -> None:
        """A batch's answers (each a server not seen before) to the writer(s) and tally."""
        nonlocal written, detailed
        written += len(answers)
        lines = []
        for answer in answers:
            row = answer.line()
            lines.append(row.line)
            tally.figures(row.amplification, answer.version, row.software)
        if out is None:
            _write_here(answers, lines)
            return
        sources = [answer.source for answer in answers] if with_sources else []
        details = answers if json_writer is not None else answers[: max(0, table_rows - detailed)]
        detailed += len(details)
        text = "".join(lines) if with_csv else ""
        out.send(Batch(text, b"".join(sources), bytes(map(len, sources)), details))

    def _write_here(answers: list[Answer], lines: list[str]) -> None:
        if csv_writer is not None:
            csv_writer.write_line("".join(lines))
        if json_writer is not None or len(shown) < table_rows:
            for answer in answers:
                if json_writer is None and len(shown) >= table_rows:
                    break
                record = answer.record()
                if json_writer is not None:
                    json_writer.write(record)
                if len(shown) < table_rows:
                    shown.append(record)

    def flush() -> None:
        for writer in (pcap, *((csv_writer, json_writer) if out is None else ())):
            if writer is not None:
                writer.flush()

    keep = pcap.write if pcap is not None else None
    try:
        stats = Sniffer(captures, validator, emit, flush, publish, keep).run(stop.is_set)
    finally:
        if out is not None:
            out.send(None)
            out.close()
    channel.send(ScanResult(stats, tally, shown, written))
    channel.close()


def run_scan(
    options: ScanOptions, console: Console, errors: Console, enricher: Enricher | None = None
) -> int:
    """The whole scan; returns the number of servers found. ScanInterrupted if Ctrl-C
    ended it (after the output and the summary are written). ``enricher`` fills the
    enrichment columns (default: the embedded place data, no reverse lookups)."""
    plan = plan_scan(options)
    space = plan.space
    _check_privilege()
    if not options.allow_default_route:
        _keep_labs_in_the_lab(space, options)
    template = build_template(options.probe)
    routes = _routes(space, options)
    ports = _source_ports(options)
    send_sockets = {v: open_send_socket(r.interface) for v, r in routes.items()}
    captures = _captures(routes, ports)
    builders = {v: FrameBuilder(r, template) for v, r in routes.items()}
    rate = options.rate
    if options.bandwidth:
        frame = max(b.frame_size for b in builders.values()) + WIRE_OVERHEAD
        rate = options.bandwidth / (frame * 8)
    key = TransactionKey(size=16 if template.id_size == 16 else 12)
    clients = {v: endpoint_text(r.source, ports[0]) for v, r in routes.items()}
    validator = Validator(space, key, template.id_size > 0, len(template.message), clients)
    context = multiprocessing.get_context("fork")
    counters = context.Array("Q", len(COUNTERS), lock=False)

    def publish(stats: ReceiveStats) -> None:
        counters[:] = stats.as_list()

    with ExitStack() as stack:
        csv_writer = json_writer = None
        if options.csv_out:
            csv_writer = CSVWriter(open_output(stack, options.csv_out), autoflush=False)
        if options.json_out:
            json_writer = JSONLinesWriter(open_output(stack, options.json_out), autoflush=False)
        pcap = None
        if options.pcap_out:
            pcap = PcapWriter(stack.enter_context(open(options.pcap_out, "wb")))
        stop = context.Event()
        receiving, sending = context.Pipe(duplex=False)
        rows_in, rows_out = context.Pipe(duplex=False)
        _widen(rows_out)
        written_in, written_out = context.Pipe(duplex=False)
        if enricher is None:
            enricher = Enricher.build(EnrichOptions())
        if _reaches_global(space):
            enricher.preload()  # before the fork: the writer must not stall on it mid-scan
        else:
            enricher.skip_embedded()  # it has nothing to say of special-purpose addresses
        constant = enricher.constant
        if constant is not None:  # the rows hold it as they are made: no writer process
            validator.asked = Asked(validator.request_size, validator.clients, validator.keyed,
                                    constant, f",{constant.csv_text()},")  # fmt: skip
        sys.stdout.flush()  # nothing buffered here may be written twice, by the processes
        sys.stderr.flush()
        child = context.Process(
            target=_sniff,
            args=(
                captures,
                validator,
                publish,
                rows_out if constant is None else None,
                csv_writer,
                json_writer,
                constant is None,
                pcap,
                options.table_rows,
                stop,
                sending,
            ),
            daemon=True,
        )
        child.start()
        sending.close()
        rows_out.close()
        for capture in captures:  # the sniffer has its own
            capture.close()
        writer = None
        if constant is None:
            writer = context.Process(
                target=run_writer,
                args=(rows_in, enricher, csv_writer, json_writer, options.table_rows, written_out),
                daemon=True,
            )
            writer.start()
        rows_in.close()
        written_out.close()
        count = options.senders
        shared = context.Array("Q", 2 * count, lock=False)

        def sender(slot: int, sockets: dict[int, Any]) -> Sender:
            return Sender(
                space, key, builders, sockets, probes=options.probes, rate=rate / count,
                source_ports=ports, max_targets=_share(options.max_targets, count, slot),
                progress=shared, slot=slot,
            )  # fmt: skip

        def walk(slot: int) -> Iterator[np.ndarray]:
            """Sender ``slot``'s part of this shard: the shard cut again by position."""
            return plan.order.blocks(options.shards * count, options.shard + options.shards * slot)

        expected = _expected_targets(plan, options)
        progress = display.ScanProgress(shared, counters, expected)
        header = display.scan_header(plan, options, routes, ports, rate)
        errors.print(header, markup=False, highlight=False, soft_wrap=True)
        shared_terminal = "-" in (options.csv_out, options.json_out) and _same_terminal()
        with _progress(progress, errors, live=not shared_terminal):
            start_at = time.perf_counter() + (SENDER_START if count > 1 else 0.0)
            helpers = [
                _start_sender(context, sender, walk, slot, routes, start_at)
                for slot in range(count - 1)
            ]
            parts = [sender(count - 1, send_sockets).run(walk(count - 1), start_at=start_at)]
            parts += [_collect(channel, process, "sender") for channel, process in helpers]
            sent = SendStats.combined(parts)
            progress.sending_ended(sent.rate)
            if sent.interrupted:
                progress.stopping()
            progress.cooling(options.cooldown)
            _cooldown(options.cooldown, sent, progress)
        stop.set()
        result: ScanResult = _collect(receiving, child, "sniffer")
        note = enricher.note()
        if writer is not None:
            wrote: WriterResult = _collect(written_in, writer, "writer")
            result.tally.add_places(wrote.places)
            result.shown, note = wrote.shown, wrote.note
    _report(result, sent, plan, options, console, errors, note)
    if sent.interrupted:
        raise ScanInterrupted(result.written)
    return result.written


def _widen(connection: Any) -> None:
    """A 1 MiB pipe to the writer, not 64 KiB: a batch's rows in one write, not a dozen
    (the kernel may refuse; then the default it is)."""
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.fcntl(connection.fileno(), F_SETPIPE_SZ, 1 << 20)


def _reaches_global(space: TargetSpace) -> bool:
    """Whether any target lies outside the special-purpose ranges (a lab's do not)."""
    special = merge(parse_target(cidr) for cidr, _ in SPECIAL_PURPOSE)
    return bool(subtract(space.spans, special))


def _share(total: int | None, count: int, slot: int) -> int | None:
    """Sender ``slot``'s part of ``--max-targets``."""
    if total is None:
        return None
    return total // count + (1 if slot < total % count else 0)


def _start_sender(
    context: Any, sender: Any, walk: Any, slot: int, routes: dict[int, Route], start_at: float
) -> tuple[Any, Any]:
    """Another sender process (``--senders``), with sockets (and transmit rings) of its own."""
    receiving, sending = context.Pipe(duplex=False)

    def work() -> None:
        sockets = {v: open_send_socket(r.interface) for v, r in routes.items()}
        sending.send(sender(slot, sockets).run(walk(slot), start_at=start_at))

    process = context.Process(target=work, daemon=True)
    process.start()
    sending.close()
    return receiving, process


def _captures(routes: dict[int, Route], ports: tuple[int, int]) -> list[Capture]:
    """One capture per interface the routes use, set up before anything is sent."""
    captures: list[Capture] = []
    for interface in sorted({route.interface for route in routes.values()}):
        try:
            captures.append(open_capture(interface, ports))
        except OSError as exc:
            for capture in captures:
                capture.close()
            raise ScanError(
                f"cannot capture on {interface}: the kernel refused a receive ring ({exc.strerror})"
            ) from None
    return captures


def _check_privilege() -> None:
    """Fail before anything is looked up or sent (finding the next hop may send a packet)."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0).close()
    except PermissionError:
        raise ScanError(NEEDS_PRIVILEGE) from None


def _expected_targets(plan: ScanPlan, options: ScanOptions) -> int:
    share = plan.order.shard_length(options.shards, options.shard)
    share = min(share, -(-plan.space.size // options.shards))
    return share if options.max_targets is None else min(share, options.max_targets)


def _cooldown(seconds: float, sent: SendStats, progress: display.ScanProgress) -> None:
    """Wait for late answers; a Ctrl-C here ends the wait, not the scan."""
    try:
        time.sleep(seconds)
    except KeyboardInterrupt:
        sent.interrupted = True
        progress.stopping()
        progress.cooling(0.0)


def _same_terminal() -> bool:
    """Whether standard output and standard error are one terminal: rows written to
    standard output would then be glued onto a live progress line, so there is none."""
    import os

    try:
        if not (sys.stdout.isatty() and sys.stderr.isatty()):
            return False
        out, err = os.fstat(sys.stdout.fileno()), os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (err.st_dev, err.st_ino)


def _collect(channel: Any, process: Any, who: str) -> Any:
    """What a helper process sends back when done. A Ctrl-C reaches it too (a sender then
    stops, the sniffer drains): wait for its figures rather than lose them."""
    while True:
        try:
            result = channel.recv()
            break
        except KeyboardInterrupt:
            continue
        except EOFError:
            raise ScanError(f"the {who} process ended without its figures") from None
    process.join()
    return result


class _progress:
    """A rich live line on a terminal; a log line every few seconds otherwise; nothing
    when ``live`` is off (the data goes to the same terminal)."""

    def __init__(self, progress: display.ScanProgress, errors: Console, live: bool = True) -> None:
        self.progress = progress
        self.errors = errors
        self.enabled = live
        self.live: Live | None = None
        self.timer: Any = None

    def __enter__(self) -> None:
        if not self.enabled:
            return
        if self.errors.is_terminal:
            self.live = Live(self.progress, console=self.errors, refresh_per_second=4)
            self.live.__enter__()
        else:
            import threading

            self.done = threading.Event()
            self.timer = threading.Thread(target=self._log, daemon=True)
            self.timer.start()

    def _log(self) -> None:
        while not self.done.wait(LOG_EVERY):
            self.errors.print(self.progress.line(), markup=False, highlight=False, soft_wrap=True)

    def __exit__(self, *exc: object) -> None:
        if not self.enabled:
            return
        if self.live is not None:
            self.live.__exit__(None, None, None)
        else:
            self.done.set()
            self.timer.join()


def _report(
    result: ScanResult,
    sent: SendStats,
    plan: ScanPlan,
    options: ScanOptions,
    console: Console,
    errors: Console,
    note: str = "",
) -> None:
    from stunscan.render.records import records_table, saw_another

    to_stdout = "-" in (options.csv_out, options.json_out)
    out = errors if to_stdout else console
    if not to_stdout and options.table_rows:
        title = f"responding servers: {result.written}"
        if result.written > len(result.shown):
            title += f" (first {len(result.shown)} shown; --csv or --json for all)"
        out.print(records_table(result.shown, title, out.width, own_address=True))
    seen = sorted({r.client for r in result.shown if r.client})
    seen_as = ""
    if seen:
        differ = sum(1 for r in result.shown if saw_another(r))
        seen_as = (
            f"{', '.join(seen)} (our address: every MAPPED / XOR-MAPPED should say it;"
            f" {differ} of the servers in the table saw another)"
        )
    summary = summarize(result.tally)
    summary.enrichment_note = note
    out.print(display.scan_summary(sent, result.stats, summary, plan, options, seen_as))
    if sent.interrupted:
        errors.print("stunscan: interrupted: every answer received is in the output", markup=False)
