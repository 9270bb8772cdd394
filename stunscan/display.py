"""Rich renderers: tables and panels for people, never parsing bytes themselves.

Everything a remote host chose (SOFTWARE, REALM, reason phrases, unknown values) goes
through :func:`printable` and into ``rich.text.Text`` objects, so no control character,
ANSI escape or rich markup it sends can reach the terminal as anything but visible text.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stunscan import protocol as proto
from stunscan.text import endpoint_text, printable


def _cell(text: str, style: str = "") -> Text:
    return Text(printable(text), style=style)


def _hex(data: bytes, limit: int = 24) -> str:
    shown = data[:limit].hex(" ")
    return shown + (" …" if len(data) > limit else "")


def _check_mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("absent", style="dim")
    return Text("valid", style="green") if ok else Text("INVALID", style="bold red")


def message_panel(origin: str, message: Any) -> Panel:
    """One dissected message: header facts, then every attribute decoded."""
    reasons: list[str] = (
        message.malformed_reasons() if hasattr(message, "malformed_reasons") else []
    )
    if not hasattr(message, "attributes"):
        title = _cell(f"{origin}  {message.summary()}")
        body: Any = Text("\n".join(printable(r) for r in reasons) or "no STUN attributes")
        return Panel(body, title=title, title_align="left")
    facts = Table.grid(padding=(0, 2))
    facts.add_row("type", _cell(f"{message.type_name} (0x{message.type:04x})"))
    facts.add_row("length", str(message.length))
    if hasattr(message, "magic_cookie"):
        facts.add_row("cookie", f"0x{message.magic_cookie:08x}")
    facts.add_row("transaction", bytes(message.transaction_id).hex())
    facts.add_row("fingerprint", _check_mark(message.fingerprint_ok()))
    table = Table(show_edge=False, header_style="bold")
    for column in ("#", "attribute", "len", "value"):
        table.add_column(column, overflow="fold")
    for number, attr in enumerate(message.attributes, 1):
        if not hasattr(attr, "attribute_name"):
            table.add_row(str(number), "(trailing)", str(len(bytes(attr))), _hex(bytes(attr)))
            continue
        style = "red" if attr.problem() else ""
        table.add_row(
            str(number),
            _cell(f"{attr.attribute_name}", style),
            str(attr.length),
            _cell(attr.value_text() if not attr.problem() else _hex(attr.value_bytes()), style),
        )
    parts: list[Any] = [facts, table]
    if reasons:
        parts.append(
            Text("malformed: " + "; ".join(printable(r) for r in reasons), style="bold red")
        )
    return Panel(Group(*parts), title=_cell(origin), title_align="left")


def explain_table(message: Any) -> Table:
    """The message byte by byte: offset, bytes, field, what they mean (for teaching)."""
    wire = message.message_bytes()
    table = Table(header_style="bold", show_lines=False)
    table.add_column("offset", justify="right", style="cyan")
    table.add_column("bytes", style="magenta", overflow="fold")
    table.add_column("field", style="bold")
    table.add_column("meaning", overflow="fold")
    method, cls = proto.split_message_type(message.type)
    table.add_row(
        "0",
        _hex(wire[0:2]),
        "message type",
        f"{message.type_name}: method 0x{method:03x}, class {cls} "
        "(class bits 4 and 8 interleaved with the method, RFC 8489 5)",
    )
    table.add_row(
        "2",
        _hex(wire[2:4]),
        "message length",
        f"{message.length} bytes of attributes follow the header",
    )
    key = message.xor_key()
    if hasattr(message, "magic_cookie"):
        table.add_row("4", _hex(wire[4:8]), "magic cookie", "0x2112a442: marks RFC 5389/8489 STUN")
        table.add_row(
            "8",
            _hex(wire[8:20]),
            "transaction ID",
            "96 bits chosen by the client; the response echoes it",
        )
    else:
        table.add_row(
            "4", _hex(wire[4:20]), "transaction ID", "128 bits: classic RFC 3489 (no magic cookie)"
        )
    offset = proto.HEADER_SIZE
    for attr in message.attributes:
        raw = bytes(attr)
        if not hasattr(attr, "attribute_name"):
            table.add_row(
                str(offset), _hex(raw), "trailing bytes", "too few for an attribute header"
            )
            offset += len(raw)
            continue
        table.add_row(
            str(offset),
            _hex(raw[:4]),
            _cell(attr.attribute_name),
            f"attribute 0x{attr.type:04x} ({proto.attribute_kind(attr.type)}),"
            f" value length {attr.length}"
            + ("" if proto.comprehension_required(attr.type) else ", comprehension-optional"),
        )
        value = attr.value_bytes()
        table.add_row(
            str(offset + 4),
            _hex(value, 32),
            "  value",
            _cell(_value_meaning(attr, value, key, wire, offset)),
        )
        padding = raw[4 + len(value) :]
        if padding:
            table.add_row(
                str(offset + 4 + len(value)),
                _hex(padding),
                "  padding",
                "to the next 4-byte boundary",
            )
        offset += len(raw)
    return table


def _value_meaning(attr: Any, value: bytes, key: bytes, wire: bytes, offset: int) -> str:
    problem = attr.problem()
    if problem:
        return f"MALFORMED: {problem}"
    if attr.kind == "xor-address":
        x_port = int.from_bytes(value[2:4], "big")
        mask = int.from_bytes(key[:2], "big")
        return (
            f"family {proto.FAMILY_NAMES.get(value[1], value[1])};"
            f" port 0x{x_port:04x} xor 0x{mask:04x} = {attr.port};"
            f" address {value[4:].hex()} xor {key[: len(value) - 4].hex()} = {attr.address}"
        )
    if attr.kind == "crc32":
        computed = proto.fingerprint(proto.covered_prefix(wire, offset, 4))
        verdict = "valid" if computed == attr.decoded else f"INVALID (computed 0x{computed:08x})"
        return f"CRC-32 of bytes 0..{offset} xor 0x5354554e = 0x{attr.decoded:08x}: {verdict}"
    kind = proto.attribute_kind(attr.type)
    if kind in ("hmac-sha1", "hmac-sha256"):
        algorithm = "HMAC-SHA1" if kind == "hmac-sha1" else "HMAC-SHA256"
        return (
            f"{algorithm} of bytes 0..{offset}, header length set to end here;"
            " needs the key to verify"
        )
    return attr.value_text()


def _address_text(address: Any) -> str:
    return str(address) if address is not None else ""


def response_label(message: Any) -> str:
    """A compact name for a table cell: 'Binding success', 'Allocate error 401'."""
    name = message.type_name
    for long, short in ((" Success Response", " success"), (" Error Response", " error")):
        if name.endswith(long):
            name = name[: -len(long)] + short
            break
    error = message.get("ERROR-CODE") if hasattr(message, "get") else None
    if error is not None and isinstance(error.decoded, tuple):
        name += f" {error.decoded[0]}"
    return name + (" [malformed]" if message.malformed else "")


RECORD_COLUMNS = (
    # header, justify, least width (numbers are never split; the rest folds if it must)
    ("server", "left", None),
    ("response", "left", None),
    ("MAPPED", "left", None),
    ("XOR-MAPPED", "left", None),
    ("SOFTWARE", "left", None),
    ("FINGERPRINT", "left", None),
    ("bytes", "right", 5),
    ("amp", "right", 5),
)


def records_table(records: list[Any], title: str) -> Table:
    """Responding servers side by side: MAPPED next to XOR-MAPPED, SOFTWARE, FINGERPRINT,
    amplification (marked * where measured against the 20-byte reference probe)."""
    table = Table(title=title, header_style="bold", title_justify="left")
    for header, justify, least in RECORD_COLUMNS:
        table.add_column(header, justify=justify, overflow="fold", min_width=least)  # type: ignore[arg-type]
    for record in records:
        mapped, xor = record.addresses()
        message = record.message
        amplification = f"{record.amplification:.2f}" + ("" if record.request_size else "*")
        response = _cell(response_label(message), "red" if message.malformed else "")
        server = endpoint_text(record.ip, record.port)
        table.add_row(
            _cell(f"{server}/{record.protocol}"),
            response,
            _cell(_address_text(mapped)),
            _cell(_address_text(xor)),
            _cell(record.software()),
            _check_mark(message.fingerprint),
            str(record.response_size),
            amplification,
        )
    return table


def report_rows(
    grid: Table, summary: Any, servers_note: str = "", amplification_note: str = ""
) -> None:
    """The report's own figures (servers per family, mean and median amplification, top
    SOFTWARE), the same lines for a capture (``stunscan pcap``) and a scan."""

    def factor(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def noted(text: str, note: str) -> str:
        return f"{text} {note}" if note else text

    servers = f"IPv4 {summary.servers_ipv4}, IPv6 {summary.servers_ipv6}"
    grid.add_row("servers", noted(servers, servers_note))
    amplification = (
        f"mean {factor(summary.mean_amplification)}, median {factor(summary.median_amplification)}"
    )
    grid.add_row("amplification", noted(amplification, amplification_note))
    software = ", ".join(f"{printable(name)} ({count})" for name, count in summary.top_software)
    grid.add_row("top SOFTWARE", Text(software or "-"))


def summary_panel(stats: Any, summary: Any) -> Panel:
    """What the capture held, in the report's own terms."""
    grid = Table.grid(padding=(0, 2))
    grid.add_row("frames read", str(stats.frames))
    grid.add_row(
        "STUN messages",
        f"{stats.stun_messages} (udp {stats.udp_messages}, tcp {stats.tcp_messages};"
        f" classic {stats.classic_messages}, ChannelData {stats.channel_data},"
        f" malformed {stats.malformed})",
    )
    grid.add_row(
        "requests / responses",
        f"{stats.requests} / {stats.responses} (paired {stats.paired}, unanswered"
        f" {stats.unanswered}, unsolicited {stats.unsolicited}; indications {stats.indications})",
    )
    report_rows(
        grid,
        summary,
        amplification_note="(one factor per server; * in the table: against the 20-byte"
        " reference probe)",
    )
    skipped = (
        f"fragments {stats.fragments}, not IP {stats.not_ip},"
        f" TCP bytes dropped {stats.tcp_bytes_dropped}; ICMP unreachable"
        f" {stats.icmp_unreachable} ({stats.icmp_quoting_stun} quoting STUN)"
    )
    grid.add_row("skipped", skipped)
    return Panel(grid, title="summary", title_align="left", expand=False)


# --------------------------------------------------------------------------- stunscan probe


def attribute_text(attr: Any) -> str:
    """A decoded (fast codec) attribute value as a person reads it."""
    if attr.problem:
        return f"MALFORMED ({attr.problem}): {_hex(attr.value)}"
    kind, value = attr.kind, attr.decoded
    if kind in ("address", "xor-address"):
        return str(value)
    if kind == "error-code":
        return f"{value[0]} {value[1]}"
    if kind == "attr-list":
        return ", ".join(proto.attribute_name(code) for code in value)
    if kind in ("crc32", "u32", "flags"):
        return f"0x{value:08x}"
    if kind == "transport":
        return {17: "UDP (17)", 6: "TCP (6)"}.get(value, str(value))
    if kind == "empty":
        return "(empty)"
    if isinstance(value, bytes):
        return _hex(value, 32)
    return str(value)


def _wire_text(attr: Any) -> str:
    """What the value is on the wire, where that differs from the decoded text."""
    if attr.kind == "xor-address" and not attr.problem:
        return f"port 0x{attr.value[2:4].hex()}, address {attr.value[4:].hex()} (XORed)"
    if attr.kind == "address" and not attr.problem:
        return f"port 0x{attr.value[2:4].hex()}, address {attr.value[4:].hex()}"
    if attr.kind in ("string", "bytes") or attr.code not in proto.ATTRIBUTES:
        return _hex(attr.value, 16)
    return ""


def attributes_table(message: Any) -> Table:
    """Every attribute of an answer, decoded, with its wire form; MAPPED and XOR-MAPPED are
    compared, since a NAT's ALG that rewrites one and not the other shows up there."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("attribute", no_wrap=True)
    table.add_column("decoded", overflow="fold")
    table.add_column("on the wire", overflow="fold", style="dim")
    for attr in message.attributes:
        style = "red" if attr.problem else ""
        if attr.code == proto.FINGERPRINT and not attr.problem:
            value: Text = Text(f"0x{attr.decoded:08x} ").append_text(
                _check_mark(message.fingerprint)
            )
        else:
            value = _cell(attribute_text(attr), style)
        code = f"0x{attr.code:04x}" if attr.code >= 0 else "-"
        table.add_row(_cell(f"{attr.name} ({code})", style), value, _cell(_wire_text(attr)))
    if message.fingerprint is None:
        table.add_row("FINGERPRINT", _check_mark(None), "")
    mapped = message.get("MAPPED-ADDRESS")
    xor = message.get("XOR-MAPPED-ADDRESS") or message.get(proto.XOR_MAPPED_ADDRESS_LEGACY)
    if mapped is not None and xor is not None and not (mapped.problem or xor.problem):
        same = mapped.decoded == xor.decoded
        table.add_row(
            "MAPPED vs XOR-MAPPED",
            Text("agree" if same else "DIFFER", style="green" if same else "bold yellow"),
            "" if same else "something on the path rewrote the plain MAPPED-ADDRESS",
        )
    if message.malformed:
        table.add_row(Text("malformed", style="bold red"), _cell("; ".join(message.malformed)), "")
    return table


def _endpoint(address: tuple[str, int] | None) -> str:
    if address is None:
        return ""
    return endpoint_text(*address)


def variants_table(report: Any) -> Table:
    """One row per request sent: size asked, size answered, amplification, RTT, from where."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for header, justify in (
        ("variant", "left"),
        ("", "left"),
        ("sent", "right"),
        ("answer", "left"),
        ("bytes", "right"),
        ("amp", "right"),
        ("RTT", "right"),
        ("note", "left"),
    ):
        table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for result in report.results:
        exchange = result.exchange
        note: list[str] = []
        if exchange.sent > 1:
            note.append(f"sent {exchange.sent} times")
        if exchange.moved:
            note.append(f"from {_endpoint(exchange.source)}")
        if exchange.stray:
            note.append("stray: " + ", ".join(f"{n} {why}" for why, n in exchange.stray.items()))
        if exchange.message is None:
            answer = Text(exchange.failure or "no answer", style="yellow")
            row: list[Any] = [answer, "", "", ""]
        else:
            answer = _cell(response_label(exchange.message))
            factor = exchange.amplification or 0.0
            row = [
                answer,
                str(len(exchange.answer)),
                Text(f"{factor:.2f}", style="bold red" if factor > 1 else "green"),
                f"{exchange.rtt * 1000:.1f} ms" if exchange.rtt is not None else "",
            ]
        table.add_row(
            result.variant,
            exchange.transport,
            str(len(exchange.request)),
            *row,
            _cell("; ".join(note)),
        )
    return table


def nat_table(nat: Any) -> Table:
    """RFC 5780's tests, then what they tell of the path's mapping and filtering."""
    from stunscan.probe.nat import mapped_address  # not at the top: pcap needs none of it

    table = Table.grid(padding=(0, 2))
    for label, exchange in nat.tests:
        if exchange.message is None:
            seen = Text(exchange.failure or "no answer", style="yellow")
        else:
            mapped = mapped_address(exchange)
            shown = str(mapped) if mapped is not None else "no mapped address"
            seen = _cell(f"mapped {shown}, answered from {_endpoint(exchange.source)}")
        table.add_row(_cell(f"{label} -> {_endpoint(exchange.target)}"), seen)
    if nat.nat is not None:
        table.add_row("NAT", "none (mapped address is our own)" if not nat.nat else "yes")
    table.add_row("mapping", nat.mapping or "-")
    table.add_row("filtering", nat.filtering or "-")
    for note in nat.notes:
        table.add_row("note", _cell(note))
    return table


def probe_panel(report: Any) -> Panel:
    """One host: the requests and answers, every attribute of each kind of answer, the NAT
    behaviour if asked, and the verdict."""
    parts: list[Any] = [variants_table(report)]
    shown_types: set[int] = set()
    for result in report.results:
        message = result.exchange.message
        if message is None or message.msg_type in shown_types:
            continue
        shown_types.add(message.msg_type)
        heading = f"{result.variant} over {result.exchange.transport}: {message.type_name}"
        parts += [_cell(heading, "bold"), attributes_table(message)]
    if report.nat is not None:
        parts += [Text("NAT behaviour (RFC 5780)", style="bold"), nat_table(report.nat), Text("")]
    verdict = report.verdict()
    style = "bold red" if verdict.startswith("AMPLIFIER") else "bold"
    parts.append(Text(verdict, style=style))
    title = report.target.given
    if title != str(report.target):
        title += f" ({report.target})"
    return Panel(Group(*parts), title=_cell(title), title_align="left")
