"""The ``stunscan`` command line: thin, it parses options and calls the modules that work.

Scapy is imported inside the commands that use it, never at module level, so that
``stunscan --help`` starts fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from stunscan import __version__
from stunscan import options as opt
from stunscan import protocol as proto

app = typer.Typer(
    help="A Scapy-based raw-packet toolkit for STUN: build, dissect, explain, analyse captures,"
    " probe hosts, scan networks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _console(stderr: bool = False) -> Console:
    """On a terminal rich fits the window. Into a file or a pipe there is no window, and
    folding addresses at rich's default 80 columns only hurts: give tables room there
    (COLUMNS, if set, still decides)."""
    stream = sys.stderr if stderr else sys.stdout
    roomy = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if roomy else None)


console = _console()
errors = _console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    errors.print(f"stunscan: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"stunscan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """stunscan: STUN messages built, dissected and explained with Scapy."""


# The enrichment options, one definition each, shared by scan, pcap and probe.
GeoipPaths = Annotated[
    list[Path] | None,
    typer.Option(
        "--geoip",
        metavar="PATH",
        help="MaxMind DB file or folder (repeatable): GeoLite2/GeoIP2 City, Country, ASN, DB-IP"
        " Lite, IPinfo Lite, ip-location-db. Default: $STUNSCAN_GEOIP, /usr/share/GeoIP,"
        " /var/lib/GeoIP, /usr/local/share/GeoIP, ~/.local/share/GeoIP; else geo and AS names"
        " from the GeoLite2 data bundled with geoip2fast (MaxMind, CC BY-SA 4.0).",
    ),
]
NoGeoip = Annotated[bool, typer.Option("--no-geoip", help="Leave asn, geo, region and city empty.")]
SectorMap = Annotated[
    Path | None,
    typer.Option(
        "--sector-map", metavar="FILE", help="CSV asn,naics,sector: fills naics and sector by AS."
    ),
]
Resolver = Annotated[
    str | None,
    typer.Option(
        "--resolver",
        metavar="IP[:PORT]",
        help="DNS server IP[:PORT] for reverse lookups (default: the system's, and then only"
        " for global addresses).",
    ),
]
PtrTimeout = Annotated[
    float,
    typer.Option(
        "--ptr-timeout", metavar="SECONDS", help="Seconds a row waits for its reverse lookup."
    ),
]
PtrOn = Annotated[
    bool, typer.Option("--ptr", help="Reverse-lookup each server's name (hostname column).")
]
PtrOff = Annotated[
    bool, typer.Option("--no-ptr", help="No reverse lookup of the addresses probed.")
]


def _enricher(
    geoip: list[Path] | None,
    no_geoip: bool,
    sector_map: Path | None,
    ptr: bool,
    resolver: str | None,
    ptr_timeout: float,
) -> Any:
    """The enrichment the options ask for; one line and exit 2 for a file or resolver that
    will not do."""
    from stunscan.enrich.enricher import Enricher, EnrichError, EnrichOptions

    options = EnrichOptions(geoip, not no_geoip, sector_map, ptr, resolver, ptr_timeout)
    try:
        return Enricher.build(options)
    except EnrichError as exc:
        _fail(str(exc))


Inputs = Annotated[
    list[str],
    typer.Argument(
        metavar="INPUT...",
        help="Hex, files (captures: pcap, pcapng, gzipped; raw or hex messages), folders of"
        " captures, or '-' (stdin).",
    ),
]


# RFC 8489 retransmission: one definition, shared by probe and verify.
Rto = Annotated[
    float, typer.Option(metavar="SECONDS", help="Initial retransmission timeout, seconds.")
]
Transmissions = Annotated[
    int, typer.Option(metavar="N", help="Times a UDP request is sent at most (RFC 8489 Rc).")
]


# MESSAGE-INTEGRITY credentials: one definition, shared by decode and explain.
Password = Annotated[
    str | None,
    typer.Option(
        metavar="TEXT",
        help="Check MESSAGE-INTEGRITY: short-term password alone; long-term with --username"
        " and --realm (taken from the message when it carries them).",
    ),
]
Username = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Long-term username."),
]
Realm = Annotated[
    str | None,
    typer.Option(metavar="REALM", help="Long-term realm."),
]
KeyHex = Annotated[
    str | None,
    typer.Option("--key", metavar="HEX", help="The HMAC key itself, in hex."),
]


def _credentials(
    password: str | None, username: str | None, realm: str | None, key: str | None
) -> proto.Credentials | None:
    """The credentials given, checked; None when none were."""
    if key is not None:
        if password is not None:
            _fail("--key and --password: give one")
        try:
            return proto.Credentials(key=bytes.fromhex(key))
        except ValueError:
            _fail(f"--key is not hex: {key!r}")
    if password is None:
        if username is not None or realm is not None:
            _fail("--username and --realm need --password")
        return None
    try:
        proto.saslprep(password)
    except ValueError as exc:
        _fail(f"--password: {exc}")
    return proto.Credentials(password, username, realm)


_told: set[str] = set()


def _integrity(message: Any, credentials: proto.Credentials | None) -> list[tuple[str, bool]]:
    """(attribute name, valid) for each MESSAGE-INTEGRITY(-SHA256) the credentials check;
    a key that can't be made for a message is said once, not once per message."""
    if credentials is None or not hasattr(message, "message_bytes"):
        return []
    try:
        return proto.integrity_verdicts(message.message_bytes(), credentials)
    except ValueError as exc:
        if str(exc) not in _told:
            _told.add(str(exc))
            errors.print(f"stunscan: {exc}", markup=False, highlight=False)
        return []


def _warn(line: str) -> None:
    errors.print(f"stunscan: warning: {line}", markup=False, highlight=False, soft_wrap=True)


class _Warnings:
    """A warning callback for the message readers that counts what it said."""

    def __init__(self) -> None:
        self.said = 0

    def __call__(self, line: str) -> None:
        self.said += 1
        _warn(line)


def _nothing_found(warnings: _Warnings) -> None:
    """No message read: exit 1, with one line unless the warnings already said why."""
    if not warnings.said:
        _fail("no STUN messages found", code=1)
    raise typer.Exit(1)


def _refuse_capture_as_output(target: str | None) -> None:
    """``--json PATH`` never overwrites a capture (``decode --json a.pcap b.pcap``)."""
    from stunscan.capture.files import is_capture

    if not target or target == "-":
        return
    try:
        with open(target, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return
    if is_capture(head):
        _fail(f"--json takes the output file, and {target!r} is a capture: not overwritten")


@app.command()
def decode(
    inputs: Inputs,
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json",
            metavar="PATH",
            help="Write one JSON object per message here ('-' for stdout).",
        ),
    ] = None,
    password: Password = None,
    username: Username = None,
    realm: Realm = None,
    key: KeyHex = None,
) -> None:
    """Dissect STUN messages with the Scapy layer and show every attribute decoded; captures
    are read by the same pipeline as `pcap`, each message shown with its frame and flow."""
    from contextlib import ExitStack

    from stunscan.capture.sources import SourceError, read_sources
    from stunscan.jsonout import json_text
    from stunscan.render.messages import message_json, message_panel

    _refuse_capture_as_output(json_out)
    credentials = _credentials(password, username, realm, key)
    warn = _Warnings()
    count = 0

    try:
        with ExitStack() as stack:
            out = None
            if json_out:
                from stunscan.record import open_output  # with the enrichment columns

                out = open_output(stack, json_out)
            for found in read_sources(inputs, warn):
                count += 1
                checked = _integrity(found.message, credentials)
                if out is not None:
                    record = message_json(found.origin, found.message, found.found)
                    if credentials is not None:
                        record["integrity"] = {name: ok for name, ok in checked}
                    out.write(json_text(record) + "\n")
                    out.flush()
                if json_out != "-":
                    console.print(message_panel(found.origin, found.message, found.found, checked))
    except SourceError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write output: {exc}")
    if not count:
        _nothing_found(warn)


@app.command()
def explain(
    message: Annotated[
        str | None,
        typer.Argument(
            metavar="[MESSAGE]",
            help="Hex of a message, a file holding one, a capture, or '-' (stdin).",
        ),
    ] = None,
    probe: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="With no MESSAGE, the request `probe -V NAME` sends: shadowserver (the"
            " report's 20-byte probe), binding, classic, software, fingerprint,"
            " change-request, padding, allocate.",
        ),
    ] = "shadowserver",
    password: Password = None,
    username: Username = None,
    realm: Realm = None,
    key: KeyHex = None,
) -> None:
    """Show how a STUN message is built, byte by byte (for teaching): the type's bits,
    FINGERPRINT and MESSAGE-INTEGRITY worked out, and why a response amplifies."""
    from stunscan.capture.sources import Decoded, SourceError, dissect, read_sources
    from stunscan.render.messages import context_title
    from stunscan.render.teach import explain_view

    credentials = _credentials(password, username, realm, key)
    if message is None:
        from stunscan.probe.variants import VARIANTS  # only here: it loads the probe package

        if probe not in VARIANTS:
            _fail(f"unknown probe {probe!r} (choose from {', '.join(VARIANTS)})")
        messages: Any = [Decoded(f"the {probe} probe", dissect(VARIANTS[probe].build()))]
    warn = _Warnings()

    if message is not None:
        messages = read_sources([message], warn)
    count = 0
    try:
        for found in messages:
            count += 1
            title = context_title(found.origin, found.found)
            if hasattr(found.message, "attributes"):
                console.print(explain_view(found.message, credentials, title))
            elif found.found is None:
                _fail(f"not a STUN message: {found.message.summary()}")
            else:  # ChannelData or a cut-short header in a capture: no STUN header to explain
                console.print(f"{title}  {found.message.summary()}", markup=False, highlight=False)
    except SourceError as exc:
        _fail(str(exc))
    if not count:
        _nothing_found(warn)


@app.command()
def shell(
    pcaps: Annotated[
        Path | None,
        typer.Option(
            metavar="FOLDER",
            help="Folder of captures to preload (default: the project's pcaps/).",
        ),
    ] = None,
) -> None:
    """Scapy's interactive console with the STUN layers, the protocol helpers and the
    project's captures preloaded."""
    from stunscan.shell import PROJECT_PCAPS, run

    run(pcaps or PROJECT_PCAPS)


@app.command()
def pcap(
    inputs: Annotated[
        list[str],
        typer.Argument(metavar="CAPTURE...", help="pcap / pcapng files, or folders of them."),
    ],
    csv_out: Annotated[
        str | None,
        typer.Option(
            "--csv", metavar="PATH", help="Write the Shadowserver CSV here ('-' for stdout)."
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option("--json", metavar="PATH", help="Write JSON lines here ('-' for stdout)."),
    ] = None,
    all_messages: Annotated[
        bool, typer.Option("--all-messages", help="A row for every message, not one per server.")
    ] = False,
    table_rows: Annotated[
        int, typer.Option(metavar="N", help="Rows shown in the terminal table.")
    ] = 50,
    workers: Annotated[
        int,
        typer.Option(
            metavar="N", help="Processes for one large pcap file (0: one per core, up to 4)."
        ),
    ] = 0,
    tcp_buffer: Annotated[
        int,
        typer.Option(
            metavar="MiB", help="MiB held for TCP reassembly over all flows (oldest evicted first)."
        ),
    ] = 256,
    include_peers: Annotated[
        bool,
        typer.Option(
            "--include-peers",
            help="Report and count ICE peers (answering only authenticated checks), TURN and"
            " other responders too, not only servers answering without credentials.",
        ),
    ] = False,
    public_only: Annotated[
        bool,
        typer.Option(
            "--public-only",
            help="Leave out servers at special-purpose addresses (RFC 6890: private, loopback,"
            " documentation...).",
        ),
    ] = False,
    server_port: Annotated[
        list[int] | None,
        typer.Option(
            "--port", "-p", metavar="PORT", help="Only servers on this port (repeatable)."
        ),
    ] = None,
    server: Annotated[
        list[str] | None,
        typer.Option("--server", metavar="CIDR", help="Only servers in this CIDR (repeatable)."),
    ] = None,
    sort: Annotated[
        str | None,
        typer.Option(
            metavar="KEY",
            help="'amplification': the table shows the rows with the largest factor first,"
            " chosen among all rows (CSV and JSON stay in capture order).",
        ),
    ] = None,
    cluster: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="A Dask scheduler (tcp://HOST:8786): every file's runs analysed by its workers."
            " Files on a shared file system, or fsspec URLs (s3://...).",
        ),
    ] = None,
    chunk_mib: Annotated[
        int,
        typer.Option(min=1, metavar="MiB", help="With --cluster: MiB of capture per task at most."),
    ] = 256,
    password: Password = None,
    username: Username = None,
    realm: Realm = None,
    key: KeyHex = None,
    geoip: GeoipPaths = None,
    no_geoip: NoGeoip = False,
    sector_map: SectorMap = None,
    ptr: PtrOn = False,
    resolver: Resolver = None,
    ptr_timeout: PtrTimeout = 2.0,
) -> None:
    """Analyse captures offline: find every STUN message, pair requests with responses,
    compute amplification, write the Shadowserver report. Scapy is not used."""
    from stunscan.pcap.filters import SORT_KEYS, FilterError, ReportFilter, parse_networks
    from stunscan.pcap.parallel import worker_count
    from stunscan.pcap.run import run_capture_analysis

    _check_numbers(
        table_rows=(table_rows, opt.TABLE_ROWS),
        workers=(workers, opt.WORKERS),
        tcp_buffer=(tcp_buffer, opt.TCP_BUFFER_MIB),
    )
    credentials = _credentials(password, username, realm, key)
    if sort is not None and sort not in SORT_KEYS:
        _fail(f"unknown sort key {sort!r} (choose from {', '.join(SORT_KEYS)})")
    if any(not 0 <= p <= 0xFFFF for p in server_port or ()):
        _fail("--port must be 0 to 65535")
    try:
        networks = parse_networks(server or [])
    except FilterError as exc:
        _fail(str(exc))
    chosen = ReportFilter(include_peers, public_only, frozenset(server_port or ()), networks)
    enricher = _enricher(geoip, no_geoip, sector_map, ptr, resolver, ptr_timeout)
    try:
        run_capture_analysis(
            inputs,
            csv_out,
            json_out,
            all_messages,
            table_rows,
            console,
            errors,
            workers or worker_count(),
            tcp_buffer << 20,
            chosen,
            sort,
            cluster,
            chunk_mib << 20,
            credentials,
            enricher,
        )
    except OSError as exc:
        _fail(f"cannot write output: {exc}")


@app.command()
def probe(
    hosts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[HOST[:PORT]...]",
            help="HOST, HOST:PORT, IPv6 or [IPv6]:PORT (default port 3478).",
        ),
    ] = None,
    input_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--input-file",
            "-I",
            metavar="FILE",
            help="File of HOST[:PORT] lines, or a report CSV (its ports).",
        ),
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            "-V",
            metavar="NAME",
            help="Request to send (repeatable): shadowserver, binding, classic, software,"
            " fingerprint, change-request, padding, allocate, nat. Default: binding.",
        ),
    ] = None,
    all_variants: Annotated[
        bool, typer.Option("--all-variants", help="Send every variant, then judge the worst.")
    ] = False,
    tcp: Annotated[bool, typer.Option("--tcp", help="Ask over TCP as well.")] = False,
    udp: Annotated[bool, typer.Option("--udp/--no-udp", help="Ask over UDP.")] = True,
    ipv4: Annotated[bool, typer.Option("-4", help="Only IPv4 addresses of names.")] = False,
    ipv6: Annotated[bool, typer.Option("-6", help="Only IPv6 addresses of names.")] = False,
    timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Seconds before a request counts as unanswered (0: RFC 8489's 39.5).",
        ),
    ] = 3.0,
    rto: Rto = 0.5,
    transmissions: Transmissions = 7,
    parallel: Annotated[int, typer.Option(metavar="N", help="Hosts probed at once.")] = 16,
    csv_out: Annotated[
        str | None,
        typer.Option(
            "--csv",
            metavar="PATH",
            help="Write the Shadowserver row of each host here ('-': stdout).",
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json", metavar="PATH", help="Write one JSON object per host ('-': stdout)."
        ),
    ] = None,
    geoip: GeoipPaths = None,
    no_geoip: NoGeoip = False,
    sector_map: SectorMap = None,
    no_ptr: PtrOff = False,
    resolver: Resolver = None,
    ptr_timeout: PtrTimeout = 2.0,
) -> None:
    """Probe single hosts: every attribute of the answers decoded, amplification per request
    variant, the worst case and a plain verdict. Exit 0 if any host answered, else 1."""
    import socket

    from stunscan.probe import NAMES, Probe, TargetError, Timing
    from stunscan.probe.run import run_probes
    from stunscan.probe.targets import file_targets

    try:
        asked = [*(hosts or []), *file_targets(input_file or [])]
    except TargetError as exc:
        _fail(str(exc))
    if not asked:
        _fail("no targets: give hosts, or --input-file")
    chosen = tuple(NAMES) if all_variants else tuple(variant or ("binding",))
    unknown = [name for name in chosen if name not in NAMES]
    if unknown:
        _fail(f"unknown variant {unknown[0]!r} (choose from {', '.join(NAMES)})")
    if not (udp or tcp):
        _fail("--no-udp leaves nothing to ask: add --tcp")
    if ipv4 and ipv6:
        _fail("-4 and -6 together leave no address")
    _check_numbers(
        timeout=(timeout, opt.TIMEOUT),
        rto=(rto, opt.RTO),
        transmissions=(transmissions, opt.TRANSMISSIONS),
        parallel=(parallel, opt.PARALLEL),
    )
    family = socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC
    settings = Probe(
        chosen, udp, tcp, Timing(rto=rto, transmissions=transmissions, timeout=timeout)
    )
    enricher = _enricher(geoip, no_geoip, sector_map, not no_ptr, resolver, ptr_timeout)
    try:
        answered = run_probes(
            asked, settings, family, parallel, csv_out, json_out, console, errors, enricher
        )
    except ValueError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write output: {exc}")
    raise typer.Exit(0 if answered else 1)


@app.command()
def scan(
    targets: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[TARGET]...",
            help="Addresses, CIDRs, FIRST-LAST ranges (IPv4/IPv6); '-' reads stdin.",
        ),
    ] = None,
    port: Annotated[
        list[str] | None,
        typer.Option(
            "--port",
            "-p",
            metavar="PORTS",
            help="Ports: 3478, 3478,5349 or 3478-3480 (repeatable).",
        ),
    ] = None,
    input_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--input-file",
            "-I",
            metavar="FILE",
            help="File of targets (# comments; ADDRESS:PORT too), or a report CSV (its ports).",
        ),
    ] = None,
    exclude: Annotated[
        list[Path] | None,
        typer.Option(
            "--exclude", metavar="FILE", help="File of addresses/CIDRs/ranges never to probe."
        ),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            metavar="CIDR",
            help="Lift the special-purpose blocklist (RFC 6890) for this CIDR (labs; repeatable).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(metavar="SEED", help="Seed of the target order (repeatable scans, shards)."),
    ] = None,
    shards: Annotated[
        int, typer.Option(metavar="N", help="Split the scan into this many disjoint shards.")
    ] = 1,
    shard: Annotated[
        int, typer.Option(metavar="N", help="Which shard this run sends (0-based).")
    ] = 0,
    max_targets: Annotated[
        int | None, typer.Option(metavar="N", help="Stop after this many targets.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the targets in scan order; send nothing.")
    ] = False,
    probe: Annotated[
        str,
        typer.Option(
            metavar="NAME",
            help="binding (keyed ID), shadowserver (the report's zero-ID probe),"
            " classic, software, fingerprint.",
        ),
    ] = "binding",
    probes: Annotated[int, typer.Option(metavar="N", help="Probes per target.")] = 1,
    rate: Annotated[
        float, typer.Option(metavar="PPS", help="Packets per second (0: as fast as possible).")
    ] = 10_000,
    bandwidth: Annotated[
        str | None,
        typer.Option(metavar="BPS", help="Bits per second instead of --rate: 10M, 1G..."),
    ] = None,
    cooldown: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to listen after the last probe.")
    ] = 3.0,
    senders: Annotated[
        int,
        typer.Option(
            metavar="N", help="Sending processes (a CPython core sends about 190,000 pkt/s)."
        ),
    ] = 1,
    interface: Annotated[
        str | None, typer.Option("--interface", "-i", metavar="NAME", help="Send and capture here.")
    ] = None,
    source_ip: Annotated[
        list[str] | None,
        typer.Option(
            "--source-ip", "-S", metavar="ADDRESS", help="Source address (one per family)."
        ),
    ] = None,
    source_port: Annotated[
        str | None,
        typer.Option(
            metavar="PORT[-PORT]", help="Source port or LOW-HIGH range (default: one random port)."
        ),
    ] = None,
    gateway_mac: Annotated[
        str | None,
        typer.Option(metavar="MAC", help="Next hop's MAC, instead of asking the kernel."),
    ] = None,
    csv_out: Annotated[
        str | None,
        typer.Option(
            "--csv", metavar="PATH", help="Stream the Shadowserver CSV here ('-': stdout)."
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option("--json", metavar="PATH", help="Stream JSON lines here ('-': stdout)."),
    ] = None,
    pcap_out: Annotated[
        str | None,
        typer.Option("--pcap-out", metavar="PATH", help="Keep every received frame in this pcap."),
    ] = None,
    table_rows: Annotated[
        int, typer.Option(metavar="N", help="Servers shown in the terminal table.")
    ] = 20,
    allow_default_route: Annotated[
        bool,
        typer.Option(
            "--allow-default-route",
            help="Send to ranges lifted by --allow even when their route is the default route.",
        ),
    ] = False,
    geoip: GeoipPaths = None,
    no_geoip: NoGeoip = False,
    sector_map: SectorMap = None,
    ptr: PtrOn = False,
    resolver: Resolver = None,
    ptr_timeout: PtrTimeout = 2.0,
) -> None:
    """Scan many hosts statelessly: raw probes at a set rate, answers validated by keyed
    transaction IDs, rows streamed as they arrive. Needs CAP_NET_RAW (root)."""
    from stunscan.scan.frames import PROBES
    from stunscan.scan.run import ScanError, ScanInterrupted, ScanOptions, plan_scan
    from stunscan.scan.run import dry_run as print_targets
    from stunscan.scan.targets import TargetError, parse_ports

    try:
        ports = parse_ports(port or ["3478"])
        source_ports = parse_ports([source_port]) if source_port else (0,)
    except TargetError as exc:
        _fail(str(exc))
    if probe not in PROBES:
        _fail(f"unknown probe {probe!r} (choose from {', '.join(PROBES)})")
    _check_numbers(
        probes=(probes, opt.PROBES),
        rate=(rate, opt.RATE),
        cooldown=(cooldown, opt.COOLDOWN),
        senders=(senders, opt.SENDERS),
        shards=(shards, opt.SHARDS),
        max_targets=(max_targets, opt.MAX_TARGETS),
        table_rows=(table_rows, opt.TABLE_ROWS),
    )
    if not 0 <= shard < shards:
        _fail(f"--shard must be 0 to {shards - 1} (--shards {shards}), not {shard}")
    try:
        bits = opt.bits_per_second(bandwidth) if bandwidth is not None else None
    except opt.OptionError as exc:
        _fail(str(exc))
    options = ScanOptions(
        targets=targets or [],
        ports=ports,
        input_files=input_file or [],
        exclude_files=exclude or [],
        allow=allow or [],
        seed=seed,
        shards=shards,
        shard=shard,
        max_targets=max_targets,
        probe=probe,
        probes=probes,
        rate=rate,
        bandwidth=bits,
        cooldown=cooldown,
        interface=interface,
        source_ips=source_ip or [],
        source_ports=(source_ports[0], source_ports[-1]),
        next_hop_mac=gateway_mac,
        csv_out=csv_out,
        json_out=json_out,
        pcap_out=pcap_out,
        table_rows=table_rows,
        senders=senders,
        allow_default_route=allow_default_route,
    )
    try:
        plan = plan_scan(options)
        if dry_run:
            print_targets(plan, options, sys.stdout)
            return
        from stunscan.scan.run import run_scan

        enricher = _enricher(geoip, no_geoip, sector_map, ptr, resolver, ptr_timeout)
        run_scan(options, console, errors, enricher)
    except ScanError as exc:
        _fail(str(exc))
    except ScanInterrupted:
        raise typer.Exit(130) from None
    except KeyboardInterrupt:  # before sending began, or while printing --dry-run's order
        _fail("interrupted", code=130)
    except OSError as exc:
        _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


ReportFiles = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[REPORT...]",
        help="Report CSVs (Shadowserver's or stunscan's; .csv, .csv.gz, .zip) or folders.",
    ),
]


@app.command()
def report(
    files: ReportFiles = None,
    compare: Annotated[
        tuple[str, str] | None,
        typer.Option(
            metavar="OLD NEW", help="OLD NEW: two reports (files or folders) compared host by host."
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option(
            "--json", metavar="PATH", help="Write every figure as JSON here ('-': stdout)."
        ),
    ] = None,
    html_out: Annotated[
        str | None,
        typer.Option("--html", metavar="PATH", help="Write a self-contained HTML page here."),
    ] = None,
    parquet_out: Annotated[
        str | None,
        typer.Option("--parquet", metavar="PATH", help="Write the cleaned, typed rows here."),
    ] = None,
    top: Annotated[int, typer.Option(metavar="N", help="Rows in each top-N table.")] = 10,
) -> None:
    """Statistics of Accessible STUN Service reports: servers per family, amplification,
    countries, ASes, SOFTWARE, ports, days, new and gone servers."""
    from stunscan.report.inputs import InputError
    from stunscan.report.run import ReportOptions, run_report

    if not files and compare is None:
        _fail("give report CSVs (files or folders), or --compare OLD NEW")
    _check_numbers(top=(top, opt.Range(1, 1_000_000)))
    options = ReportOptions(files or [], compare, json_out, html_out, parquet_out, top)
    try:
        run_report(options, console)
    except InputError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(
            f"cannot write output: {exc.strerror or exc}"
            + (f": {exc.filename}" if exc.filename else "")
        )


@app.command()
def verify(
    files: Annotated[
        list[str],
        typer.Argument(
            metavar="REPORT...", help="Report CSVs (.csv, .csv.gz, .zip) or folders of them."
        ),
    ],
    rate: Annotated[
        float,
        typer.Option(
            metavar="N", help="Packets per second at most, all hosts together (0: no cap)."
        ),
    ] = 100.0,
    parallel: Annotated[int, typer.Option(metavar="N", help="Hosts asked at once.")] = 16,
    timeout: Annotated[
        float,
        typer.Option(metavar="SECONDS", help="Seconds before a request counts as unanswered."),
    ] = 3.0,
    rto: Rto = 0.5,
    transmissions: Transmissions = 7,
    csv_out: Annotated[
        str | None,
        typer.Option(
            "--csv",
            metavar="PATH",
            help="Write the rows with status, amplification_then, checked_at.",
        ),
    ] = None,
    json_out: Annotated[
        str | None,
        typer.Option("--json", metavar="PATH", help="Write the results as JSON ('-': stdout)."),
    ] = None,
) -> None:
    """Ask every host of a report again (its own 20-byte probe and a Binding, over the
    listed protocol): still open, changed, or closed. Exit 0 if none is still open, else 1."""
    from stunscan.probe.exchange import Timing
    from stunscan.report.inputs import InputError
    from stunscan.report.run import VerifyOptions, run_verify

    _check_numbers(
        rate=(rate, opt.RATE),
        parallel=(parallel, opt.PARALLEL),
        timeout=(timeout, opt.Range(0.01, 3600)),
        rto=(rto, opt.RTO),
        transmissions=(transmissions, opt.TRANSMISSIONS),
    )
    timing = Timing(rto=rto, transmissions=transmissions, timeout=timeout)
    options = VerifyOptions(files, rate, parallel, timing, csv_out, json_out)
    try:
        still_open = run_verify(options, console, errors)
    except InputError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(
            f"cannot write output: {exc.strerror or exc}"
            + (f": {exc.filename}" if exc.filename else "")
        )
    raise typer.Exit(1 if still_open else 0)


def _check_numbers(**values: tuple[float | None, opt.Range]) -> None:
    """Every numeric option finite and in its range (stunscan.options), or one line, exit 2."""
    try:
        opt.check_all(**values)
    except opt.OptionError as exc:
        _fail(str(exc))


def _words_for_arguments() -> None:
    """Help shows an argument's metavar (FILE..., HOST[:PORT]...) where typer would show
    its Python type (<list[str]>) and wrap it in braces in the usage line."""
    from typer.core import TyperArgument

    typed = TyperArgument.display_type_rich
    usage = TyperArgument._usage_display_name

    def display_type_rich(self: TyperArgument, ctx: Any) -> str | None:
        return None if self.metavar else typed(self, ctx)

    def usage_name(self: TyperArgument) -> str:
        return self.metavar or usage(self)

    TyperArgument.display_type_rich = display_type_rich  # type: ignore[method-assign,assignment]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]


_words_for_arguments()


def main(args: list[str] | None = None) -> None:
    """The console script. A usage error ends in one line, as the tool's own errors do
    (typer would draw a box, click would print three lines)."""
    from typer._click import exceptions as click_errors  # typer's own copy of click

    try:
        code = app(args=args, standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        raise SystemExit(exc.exit_code) from None
    except click_errors.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx is not None else "stunscan"
        _line(f"{exc.format_message()} (see {command} --help)")
        raise SystemExit(exc.exit_code) from None
    except click_errors.ClickException as exc:
        _line(exc.format_message())
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        _line("aborted")
        raise SystemExit(130) from None
    except KeyboardInterrupt:  # while starting, before a command could catch it
        _line("interrupted")
        raise SystemExit(130) from None
    raise SystemExit(code if isinstance(code, int) else 0)


def _line(message: str) -> None:
    errors.print(f"stunscan: {message}", markup=False, highlight=False, soft_wrap=True)
