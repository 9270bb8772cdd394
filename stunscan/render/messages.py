"""Messages for people: a dissected message's panel, the byte-by-byte explanation, and the
attributes of a decoded answer. Renderers never parse bytes; the layer and codec do.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stunscan import codec
from stunscan import protocol as proto
from stunscan.jsonshape import codec_attribute_json, layer_attribute_json
from stunscan.render.cells import cell, check_mark, hex_preview
from stunscan.text import endpoint_text, printable

MAX_SHOWN_ATTRIBUTES = 200
"""Attributes shown in a panel or an explanation; a line says how many more there are
(real messages hold a few dozen at most; ``decode --json`` always lists every one)."""


def not_shown(count: int) -> str:
    """The line that stands for the attributes past :data:`MAX_SHOWN_ATTRIBUTES`."""
    return f"{count:,} more attribute{'s' if count != 1 else ''} not shown"


MAX_EXPLAINED_ATTRIBUTES = 50
"""Attributes ``explain`` takes byte by byte (up to three rows each, then a row each in the
amplification budget, ``render.budget.MAX_SHOWN_PARTS``): past fifty it teaches nothing
more, and rich takes about half a millisecond a row."""


def context_title(origin: str, found: Any) -> str:
    """Where a message was seen, as tshark shows it: 'file.pcap  frame 12
    13:14:27.123456  192.0.2.1:3478 → 192.0.2.9:40000  udp' (UTC), marked when quoted
    inside an ICMP error; just the origin for hex and raw messages. Escaped."""
    if found is None:
        return printable(origin)
    try:
        when = datetime.fromtimestamp(found.time, timezone.utc).strftime("%H:%M:%S.%f")
    except (ValueError, OverflowError, OSError):  # a damaged capture's timestamp
        when = f"{found.time:.6f}"
    title = (
        f"{origin}  frame {found.frame}  {when}  {endpoint_text(found.src, found.sport)} →"
        f" {endpoint_text(found.dst, found.dport)}  {found.transport}"
    )
    if found.quoted_in_icmp:
        title += "  quoted in ICMP"
    return printable(title)


def message_json(origin: str, message: Any, found: Any) -> dict[str, object]:
    """One message for ``decode --json``: its context (None outside captures), then every
    header field and every attribute decoded (all of them, however many)."""
    result: dict[str, object] = {
        "origin": origin,
        "frame": found.frame if found else None,
        "time": found.time if found else None,
        "transport": found.transport if found else None,
        "src": found.src if found else None,
        "sport": found.sport if found else None,
        "dst": found.dst if found else None,
        "dport": found.dport if found else None,
        "quoted_in_icmp": found.quoted_in_icmp if found else False,
        "kind": found.kind if found else None,
        "hex": bytes(found.data if found else message).hex(),
        "summary": message.summary(),
    }
    if hasattr(message, "malformed_reasons"):
        result["malformed"] = message.malformed_reasons()
    if hasattr(message, "attributes"):
        result["type"] = f"{message.type:04x}"
        result["type_name"] = message.type_name
        result["transaction_id"] = bytes(message.transaction_id).hex()
        result["fingerprint"] = message.fingerprint_ok()
        result["attributes"] = attributes_json(message)
    return result


def attributes_json(message: Any) -> list[dict[str, Any]]:
    """Every attribute of a dissected message as JSON: the first
    :data:`MAX_SHOWN_ATTRIBUTES` from the Scapy layer (those the panel shows), the rest from
    the fast codec on the same bytes, so that a message of 16,383 attributes is not made
    into 16,383 packets. The two decoders agree field by field (tests/test_codec_*, the fuzz
    campaign); should they ever differ in count here, the layer gives them all."""
    attributes = message.attributes
    shown = [
        layer_attribute_json(a)
        for a in attributes[:MAX_SHOWN_ATTRIBUTES]
        if hasattr(a, "attribute_name")
    ]
    if len(attributes) <= MAX_SHOWN_ATTRIBUTES:
        return shown
    decoded = codec.decode(message.message_bytes())
    if decoded is None or len(decoded.attributes) != len(attributes):
        rest = attributes[MAX_SHOWN_ATTRIBUTES:]
        return shown + [layer_attribute_json(a) for a in rest if hasattr(a, "attribute_name")]
    rest = decoded.attributes[MAX_SHOWN_ATTRIBUTES:]
    return shown + [codec_attribute_json(a) for a in rest if a.code >= 0]


def message_panel(
    origin: str,
    message: Any,
    found: Any = None,
    integrity: list[tuple[str, bool]] | None = None,
) -> Panel:
    """One dissected message: header facts, then its attributes decoded (at most
    :data:`MAX_SHOWN_ATTRIBUTES`, then how many more); ``integrity`` the
    MESSAGE-INTEGRITY(-SHA256) verdicts when a key was given."""
    origin = context_title(origin, found)
    reasons: list[str] = (
        message.malformed_reasons() if hasattr(message, "malformed_reasons") else []
    )
    if not hasattr(message, "attributes"):
        title = cell(f"{origin}  {message.summary()}")
        body: Any = Text("\n".join(printable(r) for r in reasons) or "no STUN attributes")
        return Panel(body, title=title, title_align="left")
    facts = Table.grid(padding=(0, 2))
    facts.add_row("type", cell(f"{message.type_name} (0x{message.type:04x})"))
    facts.add_row("length", str(message.length))
    if hasattr(message, "magic_cookie"):
        facts.add_row("cookie", f"0x{message.magic_cookie:08x}")
    facts.add_row("transaction", bytes(message.transaction_id).hex())
    facts.add_row("fingerprint", check_mark(message.fingerprint_ok()))
    for name, ok in integrity or ():
        facts.add_row(name.lower(), check_mark(ok))
    table = Table(show_edge=False, header_style="bold")
    for column in ("#", "attribute", "len", "value"):
        table.add_column(column, overflow="fold")
    attributes = message.attributes
    for number, attr in enumerate(attributes[:MAX_SHOWN_ATTRIBUTES], 1):
        if not hasattr(attr, "attribute_name"):
            table.add_row(
                str(number), "(trailing)", str(len(bytes(attr))), hex_preview(bytes(attr))
            )
            continue
        style = "red" if attr.problem() else ""
        table.add_row(
            str(number),
            cell(f"{attr.attribute_name}", style),
            str(attr.length),
            cell(
                attr.value_text() if not attr.problem() else hex_preview(attr.value_bytes()), style
            ),
        )
    if len(attributes) > MAX_SHOWN_ATTRIBUTES:
        table.add_row("…", not_shown(len(attributes) - MAX_SHOWN_ATTRIBUTES), "", "")
    parts: list[Any] = [facts, table]
    if reasons:
        parts.append(
            Text("malformed: " + "; ".join(printable(r) for r in reasons), style="bold red")
        )
    return Panel(Group(*parts), title=cell(origin), title_align="left")


def explain_table(
    message: Any, integrity: dict[int, bool] | None = None, title: str | None = None
) -> Table:
    """The message byte by byte: offset, bytes, field, what they mean (for teaching); the
    first :data:`MAX_EXPLAINED_ATTRIBUTES` attributes, then how many more.

    ``integrity`` maps the offset of each MESSAGE-INTEGRITY(-SHA256) to its verdict when a
    key was given (``render.teach.integrity_verdicts``)."""
    wire = message.message_bytes()
    table = Table(
        header_style="bold",
        show_lines=False,
        title=cell(title) if title else None,
        title_justify="left",
    )
    table.add_column("offset", justify="right", style="cyan")
    table.add_column("bytes", style="magenta", overflow="fold")
    table.add_column("field", style="bold")
    table.add_column("meaning", overflow="fold")
    method, cls = proto.split_message_type(message.type)
    table.add_row(
        "0",
        hex_preview(wire[0:2]),
        "message type",
        f"{message.type_name}: method 0x{method:03x}, class {cls} "
        "(class bits 4 and 8 interleaved with the method, RFC 8489 5)",
    )
    table.add_row(
        "2",
        hex_preview(wire[2:4]),
        "message length",
        f"{message.length} bytes of attributes follow the header",
    )
    key = message.xor_key()
    if hasattr(message, "magic_cookie"):
        table.add_row(
            "4", hex_preview(wire[4:8]), "magic cookie", "0x2112a442: marks RFC 5389/8489 STUN"
        )
        table.add_row(
            "8",
            hex_preview(wire[8:20]),
            "transaction ID",
            "96 bits chosen by the client; the response echoes it",
        )
    else:
        table.add_row(
            "4",
            hex_preview(wire[4:20]),
            "transaction ID",
            "128 bits: classic RFC 3489 (no magic cookie)",
        )
    offset = proto.HEADER_SIZE
    attributes = message.attributes
    for attr in attributes[:MAX_EXPLAINED_ATTRIBUTES]:
        raw = attr.wire() if hasattr(attr, "wire") else bytes(attr)
        if not hasattr(attr, "attribute_name"):
            table.add_row(
                str(offset), hex_preview(raw), "trailing bytes", "too few for an attribute header"
            )
            offset += len(raw)
            continue
        table.add_row(
            str(offset),
            hex_preview(raw[:4]),
            cell(attr.attribute_name),
            f"attribute 0x{attr.type:04x} ({proto.attribute_kind(attr.type)}),"
            f" value length {attr.length}"
            + ("" if proto.comprehension_required(attr.type) else ", comprehension-optional"),
        )
        value = attr.value_bytes()
        if value or attr.problem():  # an empty value has no bytes to explain
            table.add_row(
                str(offset + 4),
                hex_preview(value, 32),
                "  value",
                cell(_value_meaning(attr, value, key, wire, offset, integrity or {})),
            )
        padding = raw[4 + len(value) :]
        if padding:
            table.add_row(
                str(offset + 4 + len(value)),
                hex_preview(padding),
                "  padding",
                "to the next 4-byte boundary",
            )
        offset += len(raw)
    if len(attributes) > MAX_EXPLAINED_ATTRIBUTES:
        more = len(attributes) - MAX_EXPLAINED_ATTRIBUTES
        table.add_row(str(offset), "…", not_shown(more), f"up to byte {len(wire)}")
    return table


def _value_meaning(
    attr: Any, value: bytes, key: bytes, wire: bytes, offset: int, integrity: dict[int, bool]
) -> str:
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
        return f"CRC-32 of bytes 0..{offset - 1} xor 0x5354554e = 0x{attr.decoded:08x}: {verdict}"
    kind = proto.attribute_kind(attr.type)
    if kind in ("hmac-sha1", "hmac-sha256"):
        algorithm = "HMAC-SHA1" if kind == "hmac-sha1" else "HMAC-SHA256"
        verdict = (
            "needs the key to verify"
            if offset not in integrity
            else "valid"
            if integrity[offset]
            else "INVALID"
        )
        return f"{algorithm} of bytes 0..{offset - 1}, header length set to end here: {verdict}"
    return attr.value_text()


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


_SECONDS = frozenset(proto.parse_attribute_code(name) for name in ("LIFETIME", "CACHE-TIMEOUT"))
"""u32 attributes that count seconds (shown as '600 s', not 0x00000258)."""
_HEX = frozenset({proto.parse_attribute_code("MAGIC-COOKIE")})


def attribute_text(attr: Any) -> str:
    """A decoded (fast codec) attribute value as a person reads it."""
    if attr.problem:
        return f"MALFORMED ({attr.problem}): {hex_preview(attr.value)}"
    kind, value = attr.kind, attr.decoded
    if kind in ("address", "xor-address"):
        return str(value)
    if kind == "error-code":
        return f"{value[0]} {value[1]}"
    if kind == "attr-list":
        return ", ".join(proto.attribute_name(code) for code in value)
    if attr.code in _SECONDS:
        return f"{value} s"
    if kind in ("crc32", "flags") or attr.code in _HEX:
        return f"0x{value:08x}"
    if kind == "u64":  # tie-breakers and the like: random numbers read better in hex
        return f"0x{value:016x}"
    if kind == "u32":
        return str(value)
    if kind == "transport":
        return {17: "UDP (17)", 6: "TCP (6)"}.get(value, str(value))
    if kind == "empty":
        return "(empty)"
    if isinstance(value, bytes):
        return hex_preview(value, 32)
    return str(value)


def _wire_text(attr: Any) -> str:
    """What the value is on the wire, where that differs from the decoded text."""
    if attr.kind == "xor-address" and not attr.problem:
        return f"port 0x{attr.value[2:4].hex()}, address {attr.value[4:].hex()} (XORed)"
    if attr.kind == "address" and not attr.problem:
        return f"port 0x{attr.value[2:4].hex()}, address {attr.value[4:].hex()}"
    if attr.kind in ("string", "bytes") or attr.code not in proto.ATTRIBUTES:
        return hex_preview(attr.value, 16)
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
                check_mark(message.fingerprint)
            )
        else:
            value = cell(attribute_text(attr), style)
        code = f"0x{attr.code:04x}" if attr.code >= 0 else "-"
        table.add_row(cell(f"{attr.name} ({code})", style), value, cell(_wire_text(attr)))
    if message.fingerprint is None:
        table.add_row("FINGERPRINT", check_mark(None), "")
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
        table.add_row(Text("malformed", style="bold red"), cell("; ".join(message.malformed)), "")
    return table
