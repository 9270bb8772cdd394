"""STUN attribute sub-layers: one Scapy class per value kind of the registry.

Every class shares the TLV frame (type, length, value, padding) and differs only in how the
value is laid out, as in ``shared/stun-registry.tsv``. :func:`dispatch_attribute` picks the
class for each TLV from the registry's kind, and falls back to :class:`STUNAttribute`
(opaque bytes) for unknown codes and for values whose size does not fit their kind, so that
nothing an attacker sends can make a kind-specific field misread it. Every class rebuilds
the bytes it was dissected from, padding included (RFC 5769 pads with 0x20).
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from scapy.fields import (
    BitField,
    ByteEnumField,
    ByteField,
    ConditionalField,
    Field,
    FieldLenField,
    FieldListField,
    IntField,
    LongField,
    PacketListField,
    ShortEnumField,
    ShortField,
    StrField,
    StrLenField,
    X3BytesField,
    XIntField,
    XShortField,
    XStrLenField,
)
from scapy.packet import NoPayload, Packet

from stunscan import protocol as proto

ATTRIBUTE_NAMES: dict[int, str] = {code: spec.name for code, spec in proto.ATTRIBUTES.items()}


# --------------------------------------------------------------------------- fields


class AttributeTypeField(ShortEnumField):
    """Attribute code shown as 'XOR-MAPPED-ADDRESS (0x0020)'; accepts registry names."""

    def __init__(self, name: str, default: int) -> None:
        super().__init__(name, default, ATTRIBUTE_NAMES)

    def i2repr(self, pkt: Packet | None, x: Any) -> str:
        return f"{proto.attribute_name(x)} (0x{x:04x})"


class UTF8StrLenField(StrLenField):
    """Text value: stored as the wire bytes (so invalid UTF-8 survives), shown decoded."""

    def h2i(self, pkt: Packet | None, x: Any) -> bytes:
        return x.encode() if isinstance(x, str) else super().h2i(pkt, x)

    def i2repr(self, pkt: Packet | None, x: bytes) -> str:
        return repr(x.decode("utf-8", "replace"))


class PaddingBytesField(StrField):
    """The 0-3 bytes after a value up to the 4-byte boundary, kept exactly as received.

    None (the default when building) means zero padding, added by the attribute's
    post_build once the value's length is known.
    """

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, bytes]:
        count = proto.padded(pkt.length) - pkt.length
        return s[count:], s[:count]

    def i2m(self, pkt: Packet | None, x: bytes | None) -> bytes:
        return b"" if x is None else x


def _xor_key(pkt: Packet | None) -> bytes:
    """Header bytes 4..20 of the enclosing message: what XOR-coded values are XORed with."""
    parent = getattr(pkt, "parent", None)
    if parent is not None and hasattr(parent, "xor_key"):
        return bytes(parent.xor_key())
    return proto.MAGIC_COOKIE_BYTES + bytes(12)


def _family_of(pkt: Packet) -> int:
    family = pkt.getfieldval("family")
    if family is None:
        address = pkt.getfieldval("address") or ""
        return proto.FAMILY_IPV6 if ":" in str(address) else proto.FAMILY_IPV4
    return int(family)


class FamilyField(ByteEnumField):
    """Address family; left as None it follows the address (IPv4 -> 1, IPv6 -> 2)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, None, proto.FAMILY_NAMES)

    def i2m(self, pkt: Packet | None, x: int | None) -> int:  # type: ignore[override]
        return _family_of(pkt) if x is None and pkt is not None else int(super().i2m(pkt, x))


class PortField(ShortField):
    """A port, XORed on the wire with the top 16 bits of the header key when ``xor``."""

    __slots__ = ("xor",)

    def __init__(self, name: str, default: int, xor: bool) -> None:
        super().__init__(name, default)
        self.xor = xor

    def _mask(self, pkt: Packet | None) -> int:
        return int.from_bytes(_xor_key(pkt)[:2], "big") if self.xor else 0

    def i2m(self, pkt: Packet | None, x: int | None) -> int:
        return (x or 0) ^ self._mask(pkt)

    def m2i(self, pkt: Packet | None, x: int) -> int:
        return x ^ self._mask(pkt)


class AddressField(Field[str, bytes]):
    """IPv4 or IPv6 address by the attribute's family; XOR-coded on the wire when ``xor``."""

    __slots__ = ("xor",)

    def __init__(self, name: str, default: str, xor: bool) -> None:
        super().__init__(name, default, fmt="16s")
        self.xor = xor

    def _code(self, pkt: Packet | None, packed: bytes) -> bytes:
        return proto.xor_bytes(packed, _xor_key(pkt)) if self.xor else packed

    def i2m(self, pkt: Packet | None, x: str | None) -> bytes:
        return self._code(pkt, ipaddress.ip_address(x or "0.0.0.0").packed)

    def m2i(self, pkt: Packet | None, x: bytes) -> str:
        return str(ipaddress.ip_address(self._code(pkt, x)))

    def addfield(self, pkt: Packet, s: bytes, val: str | None) -> bytes:
        return s + self.i2m(pkt, val)

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, str]:
        size = 16 if _family_of(pkt) == proto.FAMILY_IPV6 else 4
        return s[size:], self.m2i(pkt, s[:size])

    def i2repr(self, pkt: Packet | None, x: str) -> str:
        return str(x)


# --------------------------------------------------------------------------- base class


def _frame(value_fields: list[Any], default_type: int) -> list[Any]:
    return [
        AttributeTypeField("type", default_type),
        ShortField("length", None),
        *value_fields,
        PaddingBytesField("padding", None),
    ]


class STUNAttribute(Packet):
    """An attribute whose value is kept as opaque bytes.

    Used for the registry's 'bytes' kind, for codes the registry does not know, and as the
    safe fallback for a known code whose value has the wrong size (see :meth:`problem`).
    """

    name = "STUN Attribute"
    kind = "bytes"
    fields_desc = _frame([XStrLenField("value", b"", length_from=lambda p: p.length)], 0)

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        padding = self.padding
        value_length = len(pkt) - proto.ATTRIBUTE_HEADER_SIZE - len(padding or b"")
        declared = value_length if self.length is None else self.length
        if self.length is None:
            pkt = pkt[:2] + struct.pack("!H", value_length) + pkt[4:]
        if padding is None:
            pkt += bytes(proto.padded(declared) - declared)
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def add_payload(self, payload: Any) -> None:
        if isinstance(payload, STUNAttribute):
            raise TypeError(
                "STUN attributes do not stack on each other: write"
                " STUN(...)/attr1/attr2 or STUN(attributes=[attr1, attr2])"
            )
        super().add_payload(payload)

    @property
    def attribute_name(self) -> str:
        return proto.attribute_name(self.type)

    def wire(self) -> bytes:
        """This TLV as on the wire: the bytes it was dissected from while no field has been
        set since (what Scapy's build would return, without running it: a message of
        thousands of attributes asks this of each several times), else built."""
        if (
            self.raw_packet_cache is not None
            and self.raw_packet_cache_fields == {}
            and isinstance(self.payload, NoPayload)
        ):
            return self.raw_packet_cache
        return bytes(self)

    def value_bytes(self) -> bytes:
        """The value as on the wire, without the TLV header or padding (short if truncated)."""
        wire = self.wire()
        return wire[4 : 4 + self.declared_length(wire)]

    def declared_length(self, wire: bytes | None = None) -> int:
        """The length field as built (the value's length unless set by hand)."""
        wire = self.wire() if wire is None else wire
        return int.from_bytes(wire[2:4], "big")

    def problem(self) -> str | None:
        """Why this attribute is malformed, or None."""
        wire = self.wire()
        declared = self.declared_length(wire)
        return proto.attribute_problem(self.type, declared, wire[4 : 4 + declared])

    @property
    def decoded(self) -> Any:
        """The value as a plain Python object (the fast codec gives the same)."""
        return self.value_bytes()

    def value_text(self) -> str:
        return self.value_bytes().hex()

    def mysummary(self) -> str:
        return f"{self.attribute_name} {self.value_text()}"


# --------------------------------------------------------------------------- per-kind classes


class STUNAttrAddress(STUNAttribute):
    """MAPPED-ADDRESS and its kin: family, port, IPv4 or IPv6 address."""

    name = "STUN Address"
    kind = "address"
    fields_desc = _frame(
        [
            ByteField("reserved", 0),
            FamilyField("family"),
            PortField("port", 0, xor=False),
            AddressField("address", "0.0.0.0", xor=False),
        ],
        proto.MAPPED_ADDRESS,
    )

    @property
    def decoded(self) -> proto.Address:
        return proto.Address(_family_of(self), self.port, str(self.address))

    def value_text(self) -> str:
        return str(self.decoded)


class STUNAttrXorAddress(STUNAttrAddress):
    """XOR-MAPPED-ADDRESS and its kin; ``port`` and ``address`` are the de-XORed values.

    ``raw_port`` and ``raw_address`` give the XORed values as they are on the wire.
    """

    name = "STUN XOR Address"
    kind = "xor-address"
    fields_desc = _frame(
        [
            ByteField("reserved", 0),
            FamilyField("family"),
            PortField("port", 0, xor=True),
            AddressField("address", "0.0.0.0", xor=True),
        ],
        proto.XOR_MAPPED_ADDRESS,
    )

    @property
    def raw_port(self) -> int:
        return int.from_bytes(self.value_bytes()[2:4], "big")

    @property
    def raw_address(self) -> bytes:
        return self.value_bytes()[4:]


class STUNAttrString(STUNAttribute):
    """UTF-8 text (SOFTWARE, USERNAME, REALM, NONCE...); invalid UTF-8 is kept as bytes."""

    name = "STUN String"
    kind = "string"
    fields_desc = _frame(
        [UTF8StrLenField("value", b"", length_from=lambda p: p.length)],
        proto.SOFTWARE,
    )

    @property
    def decoded(self) -> str:
        return bytes(self.value).decode("utf-8", "replace")

    def value_text(self) -> str:
        return repr(self.decoded)


class STUNAttrU32(STUNAttribute):
    """32-bit unsigned value (LIFETIME, PRIORITY, RESPONSE-PORT's high half...)."""

    name = "STUN Integer"
    kind = "u32"
    fields_desc = _frame(
        [IntField("value", 0)],
        0x000D,
    )

    @property
    def decoded(self) -> int:
        return int(self.value)

    def value_text(self) -> str:
        return str(self.value)


class STUNAttrU64(STUNAttrU32):
    """64-bit unsigned value (ICE-CONTROLLED / ICE-CONTROLLING tie-breakers)."""

    name = "STUN Integer 64"
    kind = "u64"
    fields_desc = _frame(
        [LongField("value", 0)],
        0x802A,
    )


class STUNAttrFlags(STUNAttribute):
    """CHANGE-REQUEST: A (0x4) change IP, B (0x2) change port."""

    name = "STUN Change Request"
    kind = "flags"
    fields_desc = _frame(
        [
            BitField("unused", 0, 29),
            BitField("change_ip", 0, 1),
            BitField("change_port", 0, 1),
            BitField("unused_low", 0, 1),
        ],
        proto.CHANGE_REQUEST,
    )

    @property
    def decoded(self) -> int:
        return int.from_bytes(self.value_bytes(), "big")

    def value_text(self) -> str:
        flags = [
            n for n, on in (("change-ip", self.change_ip), ("change-port", self.change_port)) if on
        ]
        return "+".join(flags) or "none"


class STUNAttrEmpty(STUNAttribute):
    """A flag attribute with no value (USE-CANDIDATE, DONT-FRAGMENT)."""

    name = "STUN Empty"
    kind = "empty"
    fields_desc = _frame(
        [],
        0x0025,
    )

    @property
    def decoded(self) -> None:
        return None

    def value_text(self) -> str:
        return "present"


def _reason_field() -> UTF8StrLenField:
    return UTF8StrLenField("reason", b"", length_from=lambda p: p.length - 4)


class STUNAttrErrorCode(STUNAttribute):
    """ERROR-CODE: class (hundreds) and number, then a UTF-8 reason phrase."""

    name = "STUN Error Code"
    kind = "error-code"
    fields_desc = _frame(
        [
            BitField("reserved", 0, 21),
            BitField("error_class", 4, 3),
            ByteField("number", 0),
            _reason_field(),
        ],
        proto.ERROR_CODE,
    )

    @property
    def code(self) -> int:
        return int(self.error_class) * 100 + int(self.number)

    @property
    def decoded(self) -> tuple[int, str]:
        return self.code, bytes(self.reason).decode("utf-8", "replace")

    def value_text(self) -> str:
        return "{} {!r}".format(*self.decoded)


class STUNAttrList(STUNAttribute):
    """UNKNOWN-ATTRIBUTES: a list of 16-bit attribute codes."""

    name = "STUN Attribute List"
    kind = "attr-list"
    fields_desc = _frame(
        [
            FieldListField(
                "codes",
                [],
                AttributeTypeField("code", 0),
                length_from=lambda p: p.length,
                # Scapy stops a list at 100 items by default (conf.max_list_count) and the
                # message then falls back to Raw: allow what a 65,535-byte value holds.
                max_count=proto.MAX_MESSAGE_LENGTH // 2,
            )
        ],
        0x000A,
    )

    @property
    def decoded(self) -> tuple[int, ...]:
        return tuple(self.codes)

    def value_text(self) -> str:
        return ", ".join(proto.attribute_name(c) for c in self.codes)


class STUNAttrFingerprint(STUNAttribute):
    """FINGERPRINT; left as None, the message computes it when built."""

    name = "STUN Fingerprint"
    kind = "crc32"
    fields_desc = _frame(
        [XIntField("crc", None)],
        proto.FINGERPRINT,
    )

    @property
    def decoded(self) -> int:
        return int(self.crc or 0)

    def value_text(self) -> str:
        return f"0x{self.decoded:08x}"


_HMAC_SIZES = {proto.MESSAGE_INTEGRITY: 20, proto.MESSAGE_INTEGRITY_SHA256: 32}


class HMACField(XStrLenField):
    """Digest bytes; None builds as zeros of the digest's size, filled in by the message."""

    def i2m(self, pkt: Packet | None, x: bytes | None) -> bytes:
        if x is None:
            return bytes(_HMAC_SIZES.get(getattr(pkt, "type", 0), 20))
        return super().i2m(pkt, x)


class STUNAttrMessageIntegrity(STUNAttribute):
    """MESSAGE-INTEGRITY (HMAC-SHA1) or MESSAGE-INTEGRITY-SHA256.

    Build with ``key=`` (see ``stunscan.protocol.short_term_key``/``long_term_key``) and no
    ``hmac``: the message computes the digest over itself when built.
    """

    name = "STUN Message Integrity"
    kind = "hmac-sha1"
    fields_desc = _frame(
        [
            HMACField("hmac", None, length_from=lambda p: p.length),  # type: ignore[arg-type]
            # Never on the wire: the key the message uses to fill in ``hmac`` when it is None.
            ConditionalField(StrField("key", None), lambda p: False),
        ],
        proto.MESSAGE_INTEGRITY,
    )

    @property
    def decoded(self) -> bytes:
        return self.value_bytes()


class STUNAttrChannel(STUNAttribute):
    """CHANNEL-NUMBER: a 16-bit channel (0x4000-0x7FFF) and 16 reserved bits."""

    name = "STUN Channel Number"
    kind = "channel"
    fields_desc = _frame(
        [XShortField("channel", 0x4000), ShortField("rffu", 0)],
        0x000C,
    )

    @property
    def decoded(self) -> int:
        return int(self.channel)

    def value_text(self) -> str:
        return f"0x{self.channel:04x}"


class STUNAttrTransport(STUNAttribute):
    """REQUESTED-TRANSPORT: an IP protocol number (17 UDP, 6 TCP)."""

    name = "STUN Requested Transport"
    kind = "transport"
    fields_desc = _frame(
        [ByteEnumField("protocol", 17, proto.TRANSPORT_NAMES), X3BytesField("rffu", 0)],
        0x0019,
    )

    @property
    def decoded(self) -> int:
        return int(self.protocol)

    def value_text(self) -> str:
        return proto.TRANSPORT_NAMES.get(self.protocol, str(self.protocol))


class STUNAttrFamily(STUNAttribute):
    """REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY."""

    name = "STUN Address Family"
    kind = "family"
    fields_desc = _frame(
        [ByteEnumField("family", 1, proto.FAMILY_NAMES), X3BytesField("rffu", 0)],
        0x0017,
    )

    @property
    def decoded(self) -> int:
        return int(self.family)

    def value_text(self) -> str:
        return proto.FAMILY_NAMES.get(self.family, f"0x{self.family:02x}")


class STUNAttrEvenPort(STUNAttribute):
    """EVEN-PORT: the R bit asks the server to reserve the next port too."""

    name = "STUN Even Port"
    kind = "even-port"
    fields_desc = _frame(
        [BitField("reserve_next", 0, 1), BitField("rffu", 0, 7)],
        0x0018,
    )

    @property
    def decoded(self) -> bool:
        return bool(self.reserve_next)

    def value_text(self) -> str:
        return "reserve next port" if self.reserve_next else "even port"


class STUNPasswordAlgorithm(Packet):
    """One (algorithm, parameters) entry of PASSWORD-ALGORITHM(S), padded to 4 bytes."""

    name = "STUN Password Algorithm"
    fields_desc = [
        ShortEnumField("algorithm", 2, proto.PASSWORD_ALGORITHM_NAMES),
        FieldLenField("params_length", None, length_of="params"),
        XStrLenField("params", b"", length_from=lambda p: p.params_length),
        StrLenField(
            "params_padding",
            None,  # type: ignore[arg-type]
            length_from=lambda p: proto.padded(p.params_length) - p.params_length,
        ),
    ]

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.params_padding is None:
            pkt += bytes(proto.padded(len(self.params)) - len(self.params))
        return pkt + pay

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    @property
    def decoded(self) -> tuple[int, bytes]:
        return int(self.algorithm), bytes(self.params)


class STUNAttrPasswordAlgorithms(STUNAttribute):
    """PASSWORD-ALGORITHMS: the algorithms a server offers."""

    name = "STUN Password Algorithms"
    kind = "pw-algs"
    fields_desc = _frame(
        [
            PacketListField(
                "algorithms",
                [],
                STUNPasswordAlgorithm,
                length_from=lambda p: p.length,
                max_count=16384,
            )
        ],
        0x8002,
    )

    @property
    def decoded(self) -> tuple[tuple[int, bytes], ...]:
        return tuple(a.decoded for a in self.algorithms)

    def value_text(self) -> str:
        names = [proto.PASSWORD_ALGORITHM_NAMES.get(a, str(a)) for a, _ in self.decoded]
        return ", ".join(names) or "none"


class STUNAttrPasswordAlgorithm(STUNAttribute):
    """PASSWORD-ALGORITHM: the algorithm a client chose."""

    name = "STUN Password Algorithm"
    kind = "pw-alg"
    fields_desc = _frame(
        [
            ShortEnumField("algorithm", 2, proto.PASSWORD_ALGORITHM_NAMES),
            FieldLenField("params_length", None, length_of="params"),
            XStrLenField("params", b"", length_from=lambda p: p.params_length),
            # What the value holds past the parameters (their padding, or more): the
            # attribute's length, not the parameters', says where the next one starts.
            XStrLenField(
                "params_rest",
                b"",
                length_from=lambda p: max((p.length or 0) - 4 - (p.params_length or 0), 0),
            ),
        ],
        proto.PASSWORD_ALGORITHM,
    )

    @property
    def decoded(self) -> tuple[int, bytes]:
        return int(self.algorithm), bytes(self.params)

    def value_text(self) -> str:
        return proto.PASSWORD_ALGORITHM_NAMES.get(self.algorithm, str(self.algorithm))


class STUNAttrCounter(STUNAttribute):
    """TRANSACTION_TRANSMIT_COUNTER (RFC 7982): retransmission counts."""

    name = "STUN Transmit Counter"
    kind = "counter"
    fields_desc = _frame(
        [ShortField("rffu", 0), ByteField("request", 0), ByteField("response", 0)],
        0x8025,
    )

    @property
    def decoded(self) -> tuple[int, int]:
        return int(self.request), int(self.response)

    def value_text(self) -> str:
        return f"request {self.request}, response {self.response}"


class STUNAttrAddressError(STUNAttrErrorCode):
    """ADDRESS-ERROR-CODE: an ERROR-CODE for one address family."""

    name = "STUN Address Error Code"
    kind = "addr-error"
    fields_desc = _frame(
        [
            ByteEnumField("family", 1, proto.FAMILY_NAMES),
            ByteField("rffu", 0),
            BitField("reserved", 0, 5),
            BitField("error_class", 4, 3),
            ByteField("number", 0),
            _reason_field(),
        ],
        0x8001,
    )

    @property
    def decoded(self) -> tuple[int, int, str]:  # type: ignore[override]
        return int(self.family), self.code, bytes(self.reason).decode("utf-8", "replace")

    def value_text(self) -> str:
        return "{} {} {!r}".format(*self.decoded)


class STUNAttrICMP(STUNAttribute):
    """ICMP (RFC 8656 18.13): an ICMP error a TURN server relays.

    The value is 8 bytes: 17 reserved bits, a 7-bit type, an 8-bit code and 32 bits of
    error data (the registry's "RFFU(9)" would not add up to its own 8-byte size).
    """

    name = "STUN ICMP"
    kind = "icmp"
    fields_desc = _frame(
        [
            BitField("rffu", 0, 17),
            BitField("icmp_type", 0, 7),
            ByteField("icmp_code", 0),
            XIntField("error_data", 0),
        ],
        0x8004,
    )

    @property
    def decoded(self) -> tuple[int, int, int]:
        return int(self.icmp_type), int(self.icmp_code), int(self.error_data)

    def value_text(self) -> str:
        return f"type {self.icmp_type} code {self.icmp_code} data 0x{self.error_data:08x}"


class STUNTrailingBytes(Packet):
    """1-3 bytes at the end of a message, too few for an attribute header: malformed."""

    name = "STUN Trailing Bytes"
    fields_desc = [StrField("data", b"")]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def problem(self) -> str:
        return proto.trailing_bytes_problem(len(self.data))

    def mysummary(self) -> str:
        return f"trailing {bytes(self.data).hex()}"


# --------------------------------------------------------------------------- dispatch

KIND_CLASSES: dict[str, type[STUNAttribute]] = {
    "address": STUNAttrAddress,
    "xor-address": STUNAttrXorAddress,
    "string": STUNAttrString,
    "bytes": STUNAttribute,
    "u32": STUNAttrU32,
    "u64": STUNAttrU64,
    "flags": STUNAttrFlags,
    "empty": STUNAttrEmpty,
    "error-code": STUNAttrErrorCode,
    "attr-list": STUNAttrList,
    "crc32": STUNAttrFingerprint,
    "hmac-sha1": STUNAttrMessageIntegrity,
    "hmac-sha256": STUNAttrMessageIntegrity,
    "channel": STUNAttrChannel,
    "transport": STUNAttrTransport,
    "family": STUNAttrFamily,
    "even-port": STUNAttrEvenPort,
    "pw-algs": STUNAttrPasswordAlgorithms,
    "pw-alg": STUNAttrPasswordAlgorithm,
    "counter": STUNAttrCounter,
    "addr-error": STUNAttrAddressError,
    "icmp": STUNAttrICMP,
}


class STUNOpaqueAttribute(STUNAttribute):
    """An attribute of a message whose method the registry does not know (a vendor's):
    opaque bytes named by code, checked only for its length (as the fast codec does)."""

    name = "STUN Attribute (unknown method)"

    @property
    def attribute_name(self) -> str:
        return proto.opaque_attribute_name(self.type)

    def problem(self) -> str | None:
        wire = bytes(self)
        declared = self.declared_length(wire)
        return proto.opaque_attribute_problem(self.type, declared, wire[4 : 4 + declared])


def attribute_class_for(code: int, value: bytes, declared_length: int) -> type[Packet]:
    """The sub-layer class for one TLV: its kind's class, or opaque bytes if it can't fit."""
    if len(value) < declared_length:
        return STUNAttribute
    kind = proto.attribute_kind(code)
    if proto.value_length_problem(kind, value) is not None:
        return STUNAttribute
    return KIND_CLASSES[kind]


def dispatch_attribute(data: bytes, _parent: Packet | None = None, **kwargs: Any) -> Packet:
    """PacketListField class callback: dissect the TLV at the start of ``data``."""
    if len(data) < proto.ATTRIBUTE_HEADER_SIZE:
        return STUNTrailingBytes(data, _parent=_parent, **kwargs)
    code, length = struct.unpack_from("!HH", data)
    msg_type = getattr(_parent, "type", None)
    if isinstance(msg_type, int) and not proto.known_method(msg_type):
        return STUNOpaqueAttribute(data, _parent=_parent, **kwargs)
    cls = attribute_class_for(code, data[4 : 4 + length], length)
    return cls(data, _parent=_parent, **kwargs)


def _address_value(value: Any) -> dict[str, Any]:
    """("192.0.2.1", 3478), an Address, or "192.0.2.1:3478" / "[2001:db8::1]:3478"."""
    if isinstance(value, proto.Address):
        return {"address": value.address, "port": value.port}
    if isinstance(value, tuple) and len(value) == 2:
        return {"address": str(value[0]), "port": int(value[1])}
    if isinstance(value, str):
        host, _, port = value.rpartition(":")
        if host and port.isdigit():
            return {"address": host.strip("[]"), "port": int(port)}
    raise ValueError(f"an address value is (address, port) or 'address:port', not {value!r}")


def _error_value(value: Any) -> dict[str, Any]:
    code, reason = value if isinstance(value, tuple) else (value, "")
    return {"error_class": int(code) // 100, "number": int(code) % 100, "reason": reason}


def _flags_value(value: Any) -> dict[str, Any]:
    flags = int(value)
    return {"change_ip": (flags >> 2) & 1, "change_port": (flags >> 1) & 1}


# How ``value=`` maps onto each kind's fields (kinds whose field is called "value" need none).
_VALUE_OF_KIND: dict[str, Any] = {
    "address": _address_value,
    "xor-address": _address_value,
    "error-code": _error_value,
    "attr-list": lambda v: {
        "codes": [proto.parse_attribute_code(c) if isinstance(c, str) else c for c in v]
    },
    "crc32": lambda v: {"crc": v},
    "hmac-sha1": lambda v: {"hmac": v},
    "hmac-sha256": lambda v: {"hmac": v},
    "channel": lambda v: {"channel": v},
    "transport": lambda v: {"protocol": v},
    "family": lambda v: {"family": v},
    "even-port": lambda v: {"reserve_next": int(bool(v))},
    "flags": _flags_value,
    "counter": lambda v: {"request": v[0], "response": v[1]},
    "icmp": lambda v: {
        "icmp_type": v[0],
        "icmp_code": v[1],
        "error_data": v[2] if len(v) > 2 else 0,
    },
    "addr-error": lambda v: {"family": v[0], **_error_value(tuple(v[1:]) if len(v) > 2 else v[1])},
    "empty": lambda v: {},
    "pw-alg": lambda v: (
        {"algorithm": v} if isinstance(v, int) else {"algorithm": v[0], "params": v[1]}
    ),
    "pw-algs": lambda v: {
        "algorithms": [
            STUNPasswordAlgorithm(algorithm=a)
            if isinstance(a, int)
            else STUNPasswordAlgorithm(algorithm=a[0], params=a[1])
            for a in v
        ]
    },
}


def make_attribute(name: str | int, **fields: Any) -> STUNAttribute:
    """Build an attribute by registry name or code with the right class for its kind.

    ``make_attribute("XOR-MAPPED-ADDRESS", address="192.0.2.1", port=32853)``; every kind
    also takes ``value=`` (``("192.0.2.1", 32853)``, ``17`` for REQUESTED-TRANSPORT,
    ``(401, "Unauthorized")`` for ERROR-CODE...). A keyword the attribute has no field
    for is a TypeError naming the fields it has.
    """
    code = proto.parse_attribute_code(name) if isinstance(name, str) else name
    kind = proto.attribute_kind(code)
    cls = KIND_CLASSES[kind]
    if "value" in fields and kind in _VALUE_OF_KIND:
        try:
            fields = {**_VALUE_OF_KIND[kind](fields.pop("value")), **fields}
        except (TypeError, ValueError, IndexError) as exc:
            raise TypeError(f"{proto.attribute_name(code)} value=: {exc}") from None
    known = [f.name for f in cls.fields_desc]
    unknown = [key for key in fields if key not in known]
    if unknown:
        shown = [f for f in known if f not in ("type", "length", "padding")]
        raise TypeError(
            f"{proto.attribute_name(code)} has no field {unknown[0]!r}: its fields are"
            f" {', '.join(shown) or '(none)'} (or value=)"
        )
    return cls(type=code, **fields)
