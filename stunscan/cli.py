"""The ``stunscan`` command line: thin, it parses options and calls the modules that work.

Scapy is imported inside the commands that use it, never at module level, so that
``stunscan --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from stunscan import __version__
from stunscan import protocol as proto

app = typer.Typer(
    help="A Scapy-based raw-packet toolkit for STUN: build, dissect, explain, analyse captures,"
    " probe hosts, scan networks.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
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
        help="MaxMind DB file or folder (repeatable): GeoLite2/GeoIP2 City, Country, ASN, DB-IP"
        " Lite, IPinfo Lite, ip-location-db. Default: $STUNSCAN_GEOIP, /usr/share/GeoIP,"
        " /var/lib/GeoIP, /usr/local/share/GeoIP, ~/.local/share/GeoIP; else geo and AS names"
        " from the GeoLite2 data bundled with geoip2fast (MaxMind, CC BY-SA 4.0).",
    ),
]
NoGeoip = Annotated[bool, typer.Option("--no-geoip", help="Leave asn, geo, region and city empty.")]
SectorMap = Annotated[
    Path | None,
    typer.Option("--sector-map", help="CSV asn,naics,sector: fills naics and sector by AS."),
]
Resolver = Annotated[
    str | None,
    typer.Option(
        "--resolver",
        help="DNS server IP[:PORT] for reverse lookups (default: the system's, and then only"
        " for global addresses).",
    ),
]
PtrTimeout = Annotated[
    float, typer.Option("--ptr-timeout", help="Seconds a row waits for its reverse lookup.")
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
    typer.Argument(help="Capture files (pcap/pcapng), folders of them, raw message files, or hex."),
]


@app.command()
def decode(
    inputs: Inputs,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False,
) -> None:
    """Dissect STUN messages with the Scapy layer and show every attribute decoded."""
    from stunscan.capture.sources import SourceError, read_sources
    from stunscan.render.messages import message_panel

    count = 0
    try:
        for found in read_sources(inputs):
            count += 1
            if as_json:
                print(json.dumps(_message_json(found.origin, found.message)), flush=True)
            else:
                console.print(message_panel(found.origin, found.message))
    except SourceError as exc:
        _fail(str(exc))
    if not count:
        _fail("no STUN messages found", code=1)


def _message_json(origin: str, message: Any) -> dict[str, object]:
    result: dict[str, object] = {"origin": origin, "summary": message.summary()}
    if hasattr(message, "malformed_reasons"):
        result["malformed"] = message.malformed_reasons()
    if hasattr(message, "attributes"):
        result["type"] = f"{message.type:04x}"
        result["type_name"] = message.type_name
        result["transaction_id"] = bytes(message.transaction_id).hex()
        result["fingerprint"] = message.fingerprint_ok()
        result["attributes"] = [
            {
                "type": f"{a.type:04x}",
                "name": a.attribute_name,
                "length": a.length,
                "value_hex": a.value_bytes().hex(),
                "value": a.value_text(),
            }
            for a in message.attributes
            if hasattr(a, "attribute_name")
        ]
    return result


@app.command()
def explain(
    message: Annotated[
        str | None, typer.Argument(help="Hex of a message, or a file holding one.")
    ] = None,
    probe: Annotated[
        str,
        typer.Option(
            help="With no MESSAGE: 'shadowserver' (the report's 20-byte probe) or 'binding'."
        ),
    ] = "shadowserver",
) -> None:
    """Show how a STUN message is built, byte by byte (for teaching)."""
    from stunscan.capture.sources import SourceError, read_sources
    from stunscan.layers import STUN, make_attribute
    from stunscan.render.messages import explain_table

    if message is None:
        if probe == "shadowserver":
            pkt = STUN(proto.REFERENCE_PROBE)
        elif probe == "binding":
            pkt = STUN(
                bytes(
                    STUN(
                        type="Binding Request",
                        attributes=[
                            make_attribute("SOFTWARE", value="stunscan"),
                            make_attribute("FINGERPRINT"),
                        ],
                    )
                )
            )
        else:
            _fail(f"unknown probe {probe!r} (shadowserver, binding)")
        messages = [pkt]
    else:
        try:
            messages = [found.message for found in read_sources([message])]
        except SourceError as exc:
            _fail(str(exc))
    for pkt in messages:
        if not hasattr(pkt, "attributes"):
            _fail(f"not a STUN message: {pkt.summary()}")
        console.print(explain_table(pkt))


@app.command()
def pcap(
    inputs: Annotated[list[str], typer.Argument(help="pcap / pcapng files, or folders of them.")],
    csv_out: Annotated[
        str | None, typer.Option("--csv", help="Write the Shadowserver CSV here ('-' for stdout).")
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write JSON lines here ('-' for stdout).")
    ] = None,
    all_messages: Annotated[
        bool, typer.Option("--all-messages", help="A row for every message, not one per server.")
    ] = False,
    table_rows: Annotated[int, typer.Option(help="Rows shown in the terminal table.")] = 50,
    workers: Annotated[
        int,
        typer.Option(help="Processes for one large pcap file (0: one per core, up to 4)."),
    ] = 0,
    geoip: GeoipPaths = None,
    no_geoip: NoGeoip = False,
    sector_map: SectorMap = None,
    ptr: PtrOn = False,
    resolver: Resolver = None,
    ptr_timeout: PtrTimeout = 2.0,
) -> None:
    """Analyse captures offline: find every STUN message, pair requests with responses,
    compute amplification, write the Shadowserver report. Scapy is not used."""
    from stunscan.pcap.parallel import worker_count
    from stunscan.pcap.run import run_capture_analysis

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
            enricher,
        )
    except OSError as exc:
        _fail(f"cannot write output: {exc}")


@app.command()
def probe(
    hosts: Annotated[
        list[str],
        typer.Argument(help="HOST, HOST:PORT, IPv6 or [IPv6]:PORT (default port 3478)."),
    ],
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            "-V",
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
        typer.Option(help="Seconds before a request counts as unanswered (0: RFC 8489's 39.5)."),
    ] = 3.0,
    rto: Annotated[float, typer.Option(help="Initial retransmission timeout, seconds.")] = 0.5,
    transmissions: Annotated[
        int, typer.Option(help="Times a UDP request is sent at most (RFC 8489 Rc).")
    ] = 7,
    parallel: Annotated[int, typer.Option(help="Hosts probed at once.")] = 16,
    csv_out: Annotated[
        str | None,
        typer.Option("--csv", help="Write the Shadowserver row of each host here ('-': stdout)."),
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write one JSON object per host ('-': stdout).")
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

    from stunscan.probe import NAMES, Probe, Timing
    from stunscan.probe.run import run_probes

    chosen = tuple(NAMES) if all_variants else tuple(variant or ("binding",))
    unknown = [name for name in chosen if name not in NAMES]
    if unknown:
        _fail(f"unknown variant {unknown[0]!r} (choose from {', '.join(NAMES)})")
    if not (udp or tcp):
        _fail("--no-udp leaves nothing to ask: add --tcp")
    if ipv4 and ipv6:
        _fail("-4 and -6 together leave no address")
    if timeout < 0 or rto <= 0 or transmissions < 1 or parallel < 1:
        _fail("--timeout must be >= 0, --rto > 0, --transmissions and --parallel >= 1")
    family = socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC
    settings = Probe(
        chosen, udp, tcp, Timing(rto=rto, transmissions=transmissions, timeout=timeout)
    )
    enricher = _enricher(geoip, no_geoip, sector_map, not no_ptr, resolver, ptr_timeout)
    try:
        answered = run_probes(
            hosts, settings, family, parallel, csv_out, json_out, console, errors, enricher
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
        typer.Argument(help="Addresses, CIDRs, FIRST-LAST ranges (IPv4/IPv6); '-' reads stdin."),
    ] = None,
    port: Annotated[
        list[str] | None,
        typer.Option("--port", "-p", help="Ports: 3478, 3478,5349 or 3478-3480 (repeatable)."),
    ] = None,
    input_file: Annotated[
        list[Path] | None,
        typer.Option("--input-file", "-I", help="File of targets, one a line, # comments."),
    ] = None,
    exclude: Annotated[
        list[Path] | None,
        typer.Option("--exclude", help="File of addresses/CIDRs/ranges never to probe."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Lift the special-purpose blocklist (RFC 6890) for this CIDR (labs; repeatable).",
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the target order (repeatable scans, shards).")
    ] = None,
    shards: Annotated[int, typer.Option(help="Split the scan into this many disjoint shards.")] = 1,
    shard: Annotated[int, typer.Option(help="Which shard this run sends (0-based).")] = 0,
    max_targets: Annotated[int | None, typer.Option(help="Stop after this many targets.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the targets in scan order; send nothing.")
    ] = False,
    probe: Annotated[
        str,
        typer.Option(
            help="binding (keyed ID), shadowserver (the report's zero-ID probe),"
            " classic, software, fingerprint."
        ),
    ] = "binding",
    probes: Annotated[int, typer.Option(help="Probes per target.")] = 1,
    rate: Annotated[
        float, typer.Option(help="Packets per second (0: as fast as possible).")
    ] = 10_000,
    bandwidth: Annotated[
        str | None, typer.Option(help="Bits per second instead of --rate: 10M, 1G...")
    ] = None,
    cooldown: Annotated[float, typer.Option(help="Seconds to listen after the last probe.")] = 3.0,
    senders: Annotated[
        int, typer.Option(help="Sending processes (a CPython core sends about 190,000 pkt/s).")
    ] = 1,
    interface: Annotated[
        str | None, typer.Option("--interface", "-i", help="Send and capture here.")
    ] = None,
    source_ip: Annotated[
        list[str] | None, typer.Option("--source-ip", "-S", help="Source address (one per family).")
    ] = None,
    source_port: Annotated[
        str | None, typer.Option(help="Source port or LOW-HIGH range (default: one random port).")
    ] = None,
    gateway_mac: Annotated[
        str | None, typer.Option(help="Next hop's MAC, instead of asking the kernel.")
    ] = None,
    csv_out: Annotated[
        str | None, typer.Option("--csv", help="Stream the Shadowserver CSV here ('-': stdout).")
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Stream JSON lines here ('-': stdout).")
    ] = None,
    pcap_out: Annotated[
        str | None, typer.Option("--pcap-out", help="Keep every received frame in this pcap.")
    ] = None,
    table_rows: Annotated[int, typer.Option(help="Servers shown in the terminal table.")] = 20,
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
    from stunscan.scan.run import ScanError, ScanOptions, plan_scan
    from stunscan.scan.run import dry_run as print_targets
    from stunscan.scan.targets import TargetError, parse_ports

    try:
        ports = parse_ports(port or ["3478"])
        source_ports = parse_ports([source_port]) if source_port else (0,)
    except TargetError as exc:
        _fail(str(exc))
    if probe not in PROBES:
        _fail(f"unknown probe {probe!r} (choose from {', '.join(PROBES)})")
    if not 1 <= probes <= 255 or rate < 0 or cooldown < 0 or shards < 1:
        _fail("--probes must be 1 to 255, --rate and --cooldown >= 0, --shards >= 1")
    if not 1 <= senders <= 64:
        _fail("--senders must be 1 to 64")
    if max_targets is not None and max_targets < 0:
        _fail("--max-targets must be >= 0")
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
        bandwidth=_bits_per_second(bandwidth) if bandwidth else None,
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
    except OSError as exc:
        _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


def _bits_per_second(text: str) -> float:
    units = {"K": 1e3, "M": 1e6, "G": 1e9}
    scale = units.get(text[-1:].upper(), 1.0)
    number = text[:-1] if scale != 1.0 else text
    try:
        value = float(number) * scale
    except ValueError:
        _fail(f"not a bandwidth: {text!r} (10M, 1G...)")
    if value <= 0:
        _fail("--bandwidth must be > 0")
    return value


def main() -> None:
    app()
