"""The STUN message layers: RFC 5389/8489 (:class:`STUN`), RFC 3489 classic
(:class:`STUNClassic`), a too-short header (:class:`STUNTruncated`) and the TCP stream of
back-to-back messages (:class:`STUNStream`).

``STUN(data)`` looks at the first bytes and returns the right one of these (or TURN
ChannelData, or Raw for bytes that are not STUN at all), so callers need not guess. The
attributes are sub-layers from :mod:`stunscan.layers.attributes`. Dissection never raises
and never recurses on what the peer sent: a bad message is dissected as far as it goes, keeps
every byte, and says what is wrong in :meth:`STUN.malformed_reasons`.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from typing import Any

from scapy.config import conf
from scapy.fields import (
    FieldLenField,
    MaximumItemsCount,
    PacketLenField,
    PacketListField,
    ShortField,
    StrField,
    XIntField,
    XShortField,
    XStrFixedLenField,
)
from scapy.packet import Packet, Padding, Raw

from stunscan import protocol as proto

from .attribute_list import (
    AttributeList,
    ReceivedHeader,
    first_with_code,
    item_problem,
    item_size,
    with_codes,
)
from .attributes import (
    STUNAttrFingerprint,
    STUNAttribute,
    STUNAttrMessageIntegrity,
    STUNTrailingBytes,
    dispatch_attribute,
)
from .channeldata import ChannelData

MAX_ATTRIBUTES = proto.MAX_MESSAGE_LENGTH // proto.ATTRIBUTE_HEADER_SIZE + 1
"""Enough list room for the most attributes a 65,535-byte body can hold (all empty)."""

_SUMMARY_KINDS = frozenset({"address", "xor-address", "error-code"})
_SUMMARY_CODES = frozenset({proto.SOFTWARE, proto.REALM})


def _in_summary(code: int) -> bool:
    """Whether an attribute of this code may be named in the one-line summary."""
    return code in _SUMMARY_CODES or proto.attribute_kind(code) in _SUMMARY_KINDS


class MessageType(int):
    """A message type that shows itself as 'Binding Request (0x0001)' (in ``ls()`` and
    ``repr``) and is an int everywhere else (``str`` stays the number)."""

    def __repr__(self) -> str:
        return f"{proto.message_type_name(self)} (0x{self:04x})"

    __str__ = int.__repr__


class HexWord(int):
    """A 32-bit value that shows itself in hex (the magic cookie: 0x2112a442)."""

    def __repr__(self) -> str:
        return f"0x{self:08x}"

    __str__ = int.__repr__


class MessageTypeField(XShortField):
    """Message type shown as 'Binding Success Response (0x0101)'; accepts such names."""

    def any2i(self, pkt: Packet | None, x: Any) -> Any:
        if isinstance(x, str):
            return MessageType(proto.parse_message_type(x))
        value = super().any2i(pkt, x)
        return MessageType(value) if isinstance(value, int) else value

    def m2i(self, pkt: Packet | None, x: int) -> int:
        return MessageType(x)

    def i2repr(self, pkt: Packet | None, x: int | None) -> str:
        if x is None:
            return "None"
        return f"{proto.message_type_name(x)} (0x{x:04x})"


class CookieField(XIntField):
    """The magic cookie, shown in hex wherever Scapy shows a value."""

    def any2i(self, pkt: Packet | None, x: Any) -> Any:
        value = super().any2i(pkt, x)
        return HexWord(value) if isinstance(value, int) else value

    def m2i(self, pkt: Packet | None, x: int) -> int:
        return HexWord(x)


class AttributeListField(PacketListField):
    """The attribute list, dissected lazily (:class:`AttributeList`).

    Scapy's PacketListField hands each item everything that follows it and keeps the rest
    as that item's padding, so a message of n attributes cost O(n^2) time and memory (16,383
    empty attributes: 675 MB); dissecting each attribute on its own TLV made that linear,
    but a packet per attribute still cost most of a second. Here dissecting the message
    only notes where each TLV starts; each attribute is dissected when first read.
    """

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, list[Any]]:  # type: ignore[override]
        declared = self.length_from(pkt) if self.length_from is not None else None
        body, rest = (s, b"") if declared is None else (s[:declared], s[declared:])
        header = ReceivedHeader(int(pkt.type), bytes(pkt.xor_key()))
        attributes = AttributeList.of_body(body, header, pkt)
        if len(attributes) > MAX_ATTRIBUTES:
            raise MaximumItemsCount(f"more than {MAX_ATTRIBUTES} attributes")
        return rest, attributes

    def do_copy(self, x: Any) -> Any:
        if isinstance(x, AttributeList):
            return x.lazy_copy()
        return super().do_copy(x)


def _attributes_field() -> PacketListField:
    return AttributeListField(
        "attributes",
        [],
        dispatch_attribute,
        length_from=lambda p: p.length,
        max_count=MAX_ATTRIBUTES,
    )


def _splice(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


class STUN(Packet):
    """A STUN message (RFC 5389/8489): 20-byte header with the magic cookie, then attributes.

    ``STUN(type="Binding Request", attributes=[...])`` builds one, and so does
    ``STUN(type="Binding Request") / make_attribute(...) / make_attribute(...)``: the
    length is filled in, the transaction ID is random unless given, and MESSAGE-INTEGRITY
    (with ``key=``) and FINGERPRINT attributes left without a value are computed over the
    built message.
    """

    name = "STUN"
    match_subclass = True
    fields_desc = [
        MessageTypeField("type", MessageType(0x0001)),
        ShortField("length", None),
        CookieField("magic_cookie", HexWord(proto.MAGIC_COOKIE)),
        XStrFixedLenField("transaction_id", None, 12),
        _attributes_field(),
    ]
    transaction_id_size = 12

    def __init__(self, _pkt: bytes = b"", *args: Any, **kwargs: Any) -> None:
        super().__init__(_pkt, *args, **kwargs)
        if not _pkt and self.getfieldval("transaction_id") is None:
            self.transaction_id = os.urandom(self.transaction_id_size)

    @classmethod
    def dispatch_hook(cls, _pkt: bytes | None = None, *args: Any, **kwargs: Any) -> type[Packet]:
        """Pick the layer for these bytes: STUN, classic, ChannelData, truncated or Raw."""
        if cls is not STUN or not _pkt:
            return cls
        return message_class_for(_pkt)

    # -- identity ------------------------------------------------------------------------

    @property
    def method(self) -> int:
        return proto.split_message_type(self.type)[0]

    @property
    def message_class(self) -> int:
        return proto.split_message_type(self.type)[1]

    @property
    def type_name(self) -> str:
        return proto.message_type_name(self.type)

    def xor_key(self) -> bytes:
        """Header bytes 4..20 (cookie + transaction ID): the XOR-address key."""
        return struct.pack("!I", self.magic_cookie) + bytes(self.transaction_id)

    def hashret(self) -> bytes:
        return bytes(self.transaction_id or b"")

    def answers(self, other: Packet) -> int:
        if not isinstance(other, STUN) or other.transaction_id != self.transaction_id:
            return 0
        method, cls = proto.split_message_type(self.type)
        other_method, other_cls = proto.split_message_type(other.type)
        responses = (proto.MessageClass.SUCCESS_RESPONSE, proto.MessageClass.ERROR_RESPONSE)
        return int(
            method == other_method and cls in responses and other_cls == proto.MessageClass.REQUEST
        )

    # -- attributes ----------------------------------------------------------------------

    def get_attribute(self, name_or_code: str | int) -> Packet | None:
        """The first attribute with this registry name or code, or None."""
        code = (
            proto.parse_attribute_code(name_or_code)
            if isinstance(name_or_code, str)
            else name_or_code
        )
        return first_with_code(self.attributes, code)

    def message_bytes(self) -> bytes:
        """This message as on the wire, without whatever follows it (as Scapy builds it:
        unchanged since dissected, the bytes received)."""
        pkt = self.self_build()
        if self.raw_packet_cache is not None:
            return pkt
        return self.post_build(pkt, b"")

    # -- building ------------------------------------------------------------------------

    def add_payload(self, payload: Any) -> None:
        """``STUN(...)/make_attribute(...)`` appends the attribute, as DHCP6 options stack:
        the length is computed again when built (set by hand before, it is dropped). Other
        payloads (Raw, Padding...) follow the message as in any Scapy layer."""
        if isinstance(payload, STUNAttribute | STUNTrailingBytes):
            self.attributes = [*self.attributes, payload]
            self.length = None
            return
        if isinstance(payload, list | tuple) and all(isinstance(p, STUNAttribute) for p in payload):
            self.attributes = [*self.attributes, *payload]
            self.length = None
            return
        super().add_payload(payload)

    def __truediv__(self, other: Any) -> Packet:
        if isinstance(other, list | tuple):  # STUN()/[attr1, attr2]
            clone = self.copy()
            clone.add_payload([a.copy() for a in other])
            return clone
        return super().__truediv__(other)  # type: ignore[no-any-return]

    def self_build(self) -> bytes:
        # XOR-coded attributes read the key from their parent: make sure it is this
        # message, also after copy() or after moving attributes between messages (those
        # not dissected yet get it when they are).
        attributes: Iterable[Packet] = self.attributes
        if isinstance(attributes, AttributeList):
            attributes.owner = self
            attributes = attributes.dissected()
        for attr in attributes:
            attr.parent = self
        return super().self_build()  # type: ignore[no-any-return]

    def _raw_packet_cache_field_value(self, fld: Any, val: Any, copy: bool = False) -> Any:
        # Scapy tells whether a list field changed by keeping a copy of every item's fields:
        # the lazy list answers without dissecting the attributes nobody read.
        if isinstance(val, AttributeList):
            return val.unchanged()
        return super()._raw_packet_cache_field_value(fld, val, copy)

    def post_build(self, pkt: bytes, pay: bytes) -> bytes:
        if self.length is None:
            pkt = pkt[:2] + struct.pack("!H", len(pkt) - proto.HEADER_SIZE) + pkt[4:]
        return self._fill_in_integrity(pkt) + pay

    def _fill_in_integrity(self, pkt: bytes) -> bytes:
        """Compute MESSAGE-INTEGRITY(-SHA256) and FINGERPRINT values left as None, in order."""
        walked = list(proto.iter_attributes(pkt))
        if len(walked) != len(self.attributes):
            return pkt
        for attr, tlv in zip(self.attributes, walked, strict=True):
            if isinstance(attr, STUNAttrMessageIntegrity):
                key = attr.getfieldval("key")
                if attr.hmac is None and key is not None:
                    digest = (
                        proto.hmac_sha1
                        if tlv.code == proto.MESSAGE_INTEGRITY
                        else proto.hmac_sha256
                    )
                    covered = proto.covered_prefix(pkt, tlv.offset, tlv.length)
                    value = digest(bytes(key), covered)[: tlv.length]
                    pkt = _splice(pkt, tlv.offset + proto.ATTRIBUTE_HEADER_SIZE, value)
            elif isinstance(attr, STUNAttrFingerprint) and attr.crc is None:
                crc = proto.fingerprint(proto.covered_prefix(pkt, tlv.offset, 4))
                pkt = _splice(pkt, tlv.offset + proto.ATTRIBUTE_HEADER_SIZE, struct.pack("!I", crc))
        return pkt

    # -- checking ------------------------------------------------------------------------

    def fingerprint_ok(self) -> bool | None:
        """True/False if FINGERPRINT verifies or not; None if there is none."""
        return proto.check_fingerprint(self.message_bytes())

    def integrity_ok(self, key: bytes | str) -> bool | None:
        """Verify MESSAGE-INTEGRITY(-SHA256) with ``key``; None if there is none.

        ``key`` is the HMAC key (``stunscan.protocol.short_term_key`` / ``long_term_key``);
        a str is taken as a short-term password.
        """
        if isinstance(key, str):
            key = proto.short_term_key(key)
        return proto.check_integrity(self.message_bytes(), key)

    def malformed_reasons(self) -> list[str]:
        """Everything that makes this message malformed; empty if it is well formed."""
        attributes = self.attributes
        if isinstance(attributes, AttributeList):
            body, problems = attributes.body_size(), attributes.problems()
        else:
            body = sum(item_size(attr) for attr in attributes)
            problems = [p for p in map(item_problem, attributes) if p]
        declared = body if self.length is None else self.length
        after = len(self.payload) if isinstance(self.payload, Padding | Raw) else 0
        reasons = proto.message_problems(declared, body) + problems
        if after:
            reasons.append(proto.extra_bytes_problem(after))
        return reasons

    @property
    def malformed(self) -> bool:
        return bool(self.malformed_reasons())

    # -- display -------------------------------------------------------------------------

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def mysummary(self) -> str:
        parts = [f"{self.name} {self.type_name}"]
        for attr in with_codes(self.attributes, _in_summary):
            if not isinstance(attr, STUNAttribute):
                continue
            if attr.kind in _SUMMARY_KINDS or attr.type in _SUMMARY_CODES:
                label = attr.attribute_name.replace("-ADDRESS", "")
                parts.append(f"{label} {attr.value_text()}")
        if self.malformed:
            parts.append("[malformed]")
        return " ".join(parts)


class STUNClassic(STUN):
    """A classic RFC 3489 message: no magic cookie, a 128-bit transaction ID."""

    name = "STUN classic"
    fields_desc = [
        MessageTypeField("type", MessageType(0x0001)),
        ShortField("length", None),
        XStrFixedLenField("transaction_id", None, 16),
        _attributes_field(),
    ]
    transaction_id_size = 16

    def xor_key(self) -> bytes:
        """Old servers (Vovida stund's 0x8020) XOR with the first bytes of the 128-bit ID."""
        return bytes(self.transaction_id)


class STUNTruncated(Packet):
    """Fewer than 20 bytes that start like STUN: malformed, kept as they are."""

    name = "STUN truncated"
    fields_desc = [StrField("data", b"")]

    def malformed_reasons(self) -> list[str]:
        return [proto.truncated_problem(len(self.data))]

    @property
    def malformed(self) -> bool:
        return True

    def mysummary(self) -> str:
        return f"STUN truncated ({len(self.data)} bytes) [malformed]"


def message_class_for(data: bytes) -> type[Packet]:
    """The layer class for a message starting at data[0] (see ``protocol.classify``)."""
    return _CLASSES.get(proto.classify(data), conf.raw_layer)


class RFC4571Frame(Packet):
    """One STUN message behind a 16-bit length prefix (RFC 4571, as ICE-TCP sends it)."""

    name = "RFC 4571 frame"
    fields_desc = [
        FieldLenField("frame_length", None, length_of="message"),
        PacketLenField("message", None, STUN, length_from=lambda p: p.frame_length),  # type: ignore[arg-type]
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def mysummary(self) -> str:
        return f"RFC 4571 [{self.message.summary() if self.message else ''}]"


_CLASSES: dict[str | None, type[Packet]] = {
    proto.STUN_MESSAGE: STUN,
    proto.CLASSIC_MESSAGE: STUNClassic,
    proto.CHANNEL_DATA: ChannelData,
    proto.TRUNCATED: STUNTruncated,
    proto.RFC4571_FRAME: RFC4571Frame,
}


def frame_at(data: bytes, offset: int) -> tuple[type[Packet], int] | None:
    """The layer class and size of the TCP stream frame at ``offset`` (``stream_frame``)."""
    frame = proto.stream_frame(data, offset)
    return (_CLASSES[frame[0]], frame[1]) if frame else None


class StreamMessagesField(PacketListField):
    """Splits a TCP payload into its STUN / ChannelData / RFC 4571 frames, iteratively."""

    def getfield(self, pkt: Packet, s: bytes) -> tuple[bytes, list[Any]]:  # type: ignore[override]
        messages: list[Any] = []
        offset = 0
        while offset < len(s):
            frame = frame_at(s, offset)
            if frame is None:
                messages.append(conf.raw_layer(s[offset:]))
                break
            cls, size = frame
            messages.append(cls(s[offset : offset + size]))
            offset += size
        return b"", messages


class STUNStream(Packet):
    """The STUN messages of one TCP segment (several may share it, RFC 8489 6.2.2).

    With Scapy's TCPSession, ``tcp_reassemble`` waits until a message split across
    segments is complete.
    """

    name = "STUN over TCP"
    fields_desc = [StreamMessagesField("messages", [], STUN)]

    @classmethod
    def tcp_reassemble(cls, data: bytes, metadata: dict[str, Any], session: Any) -> Packet | None:
        offset = 0
        while offset < len(data):
            frame = frame_at(data, offset)
            if frame is None:
                break
            if offset + frame[1] > len(data):
                return None
            offset += frame[1]
        return cls(data)

    def mysummary(self) -> str:
        return " | ".join(m.summary() for m in self.messages)
