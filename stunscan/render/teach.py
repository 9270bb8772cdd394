"""``stunscan explain`` for learners: the byte table, then the message type drawn bit by bit,
FINGERPRINT and MESSAGE-INTEGRITY worked step by step with the message's own numbers, and
for a response where its amplification comes from.

Renderers never parse bytes: the numbers come from ``stunscan.protocol`` and the codec.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from stunscan import codec
from stunscan import protocol as proto
from stunscan.advice import advise
from stunscan.budget import budget
from stunscan.render.budget import budget_group
from stunscan.render.cells import cell
from stunscan.render.messages import explain_table

TYPE_BIT_ROLES = (
    "0",
    "0",
    "M11",
    "M10",
    "M9",
    "M8",
    "M7",
    "C1",
    "M6",
    "M5",
    "M4",
    "C0",
    "M3",
    "M2",
    "M1",
    "M0",
)
"""Bit 15 first: the two top bits are zero, the class bits C1 and C0 sit at bits 8 and 4."""


def type_diagram(msg_type: int) -> Group:
    """The 16-bit message type as a bit diagram, then method and class read back from it."""
    table = Table(box=box.SQUARE, show_header=False, pad_edge=False, padding=(0, 0))
    table.add_column("", style="bold", no_wrap=True)
    for _ in range(16):
        table.add_column("", justify="center", min_width=3, no_wrap=True)
    bits = [(msg_type >> (15 - i)) & 1 for i in range(16)]
    styles = [
        "dim" if r == "0" else "bold yellow" if r.startswith("C") else "" for r in TYPE_BIT_ROLES
    ]
    table.add_row("bit ", *(Text(str(15 - i), style="dim") for i in range(16)))
    table.add_row("value ", *(Text(str(b), style=s) for b, s in zip(bits, styles, strict=True)))
    table.add_row("role ", *(Text(r, style=s) for r, s in zip(TYPE_BIT_ROLES, styles, strict=True)))
    method, cls = proto.split_message_type(msg_type)
    words = Text(
        f"type 0x{msg_type:04x}: method bits M11..M0 = {method:012b} = 0x{method:03x}"
        f" ({proto.method_name(method)}); class bits C1 C0 = {cls >> 1}{cls & 1} = {cls}"
        f" ({proto.CLASS_NAMES.get(cls, '?')}). The class is split and slid into the method"
        " (RFC 8489 5) so that the old RFC 3489 types keep their values: 0x0001 Binding"
        " Request, 0x0101 Binding Success (C1 set), 0x0111 Binding Error (C1 and C0)."
    )
    if msg_type > 0x3FFF:
        words = Text(f"type 0x{msg_type:04x}: the top two bits are not 00, so this is not STUN")
    return Group(Text("The message type, bit by bit", style="bold"), table, words)


def probe_note(wire: bytes) -> Text | None:
    """Why the default message is the one the Shadowserver report sends."""
    if wire != proto.REFERENCE_PROBE:
        return None
    return Text(
        "This is the Shadowserver report's probe: a Binding request of exactly 20 bytes,"
        " no attributes, magic cookie 0x2112a442, and a transaction ID of twelve zero bytes."
        " A real client draws its ID at random (RFC 8489 6: 96 random bits); the all-zero ID"
        " is what makes it the report's probe and tells its scans apart. Every byte a server"
        " sends back is amplification against these 20.",
    )


def fingerprint_walk(wire: bytes) -> list[str]:
    """FINGERPRINT, step by step with this message's numbers."""
    end = proto.HEADER_SIZE + proto.message_length_field(wire)
    for attr in proto.iter_attributes(wire, end, (proto.FINGERPRINT,)):
        if attr.truncated or attr.length != 4:
            continue
        covered = proto.covered_prefix(wire, attr.offset, 4)
        sent_length = proto.message_length_field(wire)
        covered_length = attr.offset + 8 - proto.HEADER_SIZE
        crc = proto.crc32(covered)
        value = crc ^ proto.FINGERPRINT_XOR
        carried = int.from_bytes(attr.value, "big")
        return [
            f"1. FINGERPRINT sits at byte {attr.offset}; it covers bytes 0..{attr.offset - 1}"
            f" ({len(covered)} bytes: the header and every attribute before it).",
            f"2. The length field in those bytes must count up to the end of FINGERPRINT:"
            f" {covered_length} (0x{covered_length:04x}); the message says {sent_length}"
            + (" (the same: it is last)." if covered_length == sent_length else "."),
            f"3. CRC-32 (the one of zlib, ISO-HDLC) of the {len(covered)} bytes = 0x{crc:08x}.",
            f"4. XOR 0x{proto.FINGERPRINT_XOR:08x} (the ASCII of 'STUN', so that a CRC of"
            f" other data inside is not mistaken for it) = 0x{value:08x}.",
            f"5. The attribute carries 0x{carried:08x}: "
            + ("valid." if carried == value else f"INVALID (computed 0x{value:08x})."),
        ]
    return []


def integrity_walk(wire: bytes, credentials: proto.Credentials | None) -> list[str]:
    """MESSAGE-INTEGRITY(-SHA256), step by step: what is covered, the length field, the key,
    the HMAC, the verdict; without credentials, what would be needed."""
    end = proto.HEADER_SIZE + proto.message_length_field(wire)
    found = [
        a for a in proto.iter_attributes(wire, end, proto.INTEGRITY_ATTRIBUTES) if not a.truncated
    ]
    if not found:
        return []
    derived: proto.DerivedKey | None = None
    problem = ""
    if credentials:
        try:
            derived = proto.derive_key(wire, credentials)
        except ValueError as exc:
            problem = str(exc)
    results = (
        {attr.offset: (hmac, ok) for attr, hmac, ok in proto.integrity_results(wire, derived.key)}
        if derived
        else {}
    )
    lines: list[str] = []
    for attr in found:
        name = proto.attribute_name(attr.code)
        algorithm = "HMAC-SHA1" if attr.code == proto.MESSAGE_INTEGRITY else "HMAC-SHA256"
        covered_length = attr.offset + 4 + attr.length - proto.HEADER_SIZE
        sent_length = proto.message_length_field(wire)
        after = sent_length - covered_length
        lines += [
            f"{name} ({algorithm}, {attr.length} bytes at byte {attr.offset}):",
            f"1. It covers bytes 0..{attr.offset - 1}: the header and the attributes before it.",
            f"2. The length field is set to end just after it: {covered_length}"
            f" (0x{covered_length:04x})"
            + (
                f" instead of {sent_length}: the {after} bytes after it (FINGERPRINT...)"
                " are not counted."
                if after
                else ", as sent: nothing follows it."
            ),
            "3. The key: short-term = SASLprep(password); long-term = MD5(username ':' realm"
            " ':' SASLprep(password)), or SHA-256 of the same when PASSWORD-ALGORITHM says so"
            " (RFC 8489 9.1-9.2).",
        ]
        if derived is None:
            lines.append(
                "4. Needs the key to verify: give --password (short-term),"
                " --username --realm --password (long-term) or --key HEX."
                + (f" ({problem})" if problem else "")
            )
            continue
        hmac, ok = results[attr.offset]
        lines.append(f"   {derived.how}")
        if derived.material:
            lines.append(f"   hashed: '{derived.material.decode('utf-8', 'backslashreplace')}'")
        lines += [
            f"   key = {derived.key.hex()}",
            f"4. {algorithm}(key, covered bytes) = {hmac[: attr.length].hex()}",
            f"5. The attribute carries {attr.value.hex()}: "
            + ("valid." if ok else "INVALID (wrong key, or the message was changed)."),
        ]
    return lines


def integrity_verdicts(wire: bytes, credentials: proto.Credentials | None) -> dict[int, bool]:
    """Offset of each integrity attribute -> valid, when credentials give a key."""
    if not credentials:
        return {}
    try:
        key = proto.derive_key(wire, credentials).key
    except ValueError:
        return {}
    return {attr.offset: ok for attr, _, ok in proto.integrity_results(wire, key)}


def explain_view(
    message: Any, credentials: proto.Credentials | None = None, title: str | None = None
) -> Group:
    """Everything ``explain`` shows for one message (``title``: where it was seen)."""
    wire = message.message_bytes()
    parts: list[Any] = []
    note = probe_note(wire)
    if note is not None:
        parts.append(note)
    parts.append(explain_table(message, integrity_verdicts(wire, credentials), title))
    parts.append(type_diagram(message.type))
    walk = fingerprint_walk(wire)
    if walk:
        parts += [Text("FINGERPRINT, step by step", style="bold"), *(cell(x) for x in walk)]
    walk = integrity_walk(wire, credentials)
    if walk:
        parts += [Text("MESSAGE-INTEGRITY, step by step", style="bold"), *(cell(x) for x in walk)]
    decoded = codec.decode(wire)
    responses = (proto.MessageClass.SUCCESS_RESPONSE, proto.MessageClass.ERROR_RESPONSE)
    if decoded is not None and decoded.is_stun and decoded.msg_class in responses:
        plan = budget(decoded)
        parts += [
            Text(
                f"Why it amplifies: {plan.response_size} bytes against the report's 20-byte"
                f" probe = {plan.factor:.2f}x",
                style="bold",
            ),
            budget_group(plan, advise(decoded, plan)),
        ]
    return Group(*parts)
