"""The fast decoder: bytes -> :class:`Message`, with no Scapy, for scanning and captures.

It reads the same protocol knowledge as the Scapy layer (``stunscan.protocol``: the
classification, the registry, the problem wording) and must give the same answer on every
field; ``tests/test_codec_differential.py`` holds it to that on the corpus, the project's
captures and generated messages. It is written for throughput: one pass over the bytes,
slices and ``int.from_bytes`` rather than per-field objects.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stunscan import protocol as proto

_HEADER = proto.HEADER_SIZE


@dataclass(slots=True)
class Attribute:
    """One attribute: the wire value (short if truncated), its padding, the decoded value."""

    code: int
    length: int
    value: bytes
    padding: bytes
    decoded: Any
    problem: str | None = None
    opaque: bool = False
    """In a message of unknown method: kept as bytes, named by its code only."""

    @property
    def name(self) -> str:
        if self.code < 0:
            return "(trailing bytes)"
        return (
            proto.opaque_attribute_name(self.code)
            if self.opaque
            else proto.attribute_name(self.code)
        )

    @property
    def kind(self) -> str:
        return "bytes" if self.opaque else proto.attribute_kind(self.code)


@dataclass(slots=True)
class Message:
    """One decoded STUN, classic STUN, ChannelData or truncated message."""

    kind: str
    msg_type: int
    length: int
    transaction_id: bytes
    cookie: int | None = None
    attributes: list[Attribute] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    fingerprint: bool | None = None
    size: int = 0
    channel: int | None = None
    data: bytes = b""

    @property
    def method(self) -> int:
        return proto.split_message_type(self.msg_type)[0]

    @property
    def msg_class(self) -> int:
        return proto.split_message_type(self.msg_type)[1]

    @property
    def type_name(self) -> str:
        return proto.message_type_name(self.msg_type)

    @property
    def is_stun(self) -> bool:
        return self.kind in (proto.STUN_MESSAGE, proto.CLASSIC_MESSAGE)

    def get(self, name_or_code: str | int) -> Attribute | None:
        """The first attribute with this registry name or code, or None."""
        code = (
            proto.parse_attribute_code(name_or_code)
            if isinstance(name_or_code, str)
            else name_or_code
        )
        for attr in self.attributes:
            if attr.code == code:
                return attr
        return None


# --------------------------------------------------------------------------- value decoders


def _address(value: bytes, key: bytes) -> proto.Address:
    return proto.Address(value[1], int.from_bytes(value[2:4], "big"), _ip_text(value[4:]))


@functools.lru_cache(maxsize=4096)
def _ip_text(packed: bytes) -> str:
    """ipaddress's text of an address, cached: building the object costs more than the
    rest of an attribute, and a capture names the same clients again and again."""
    return str(ipaddress.ip_address(packed))


def _xor_address(value: bytes, key: bytes) -> proto.Address:
    return _address(proto.xor_address_value(value, key), key)


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _error_code(value: bytes) -> tuple[int, str]:
    return (value[2] & 7) * 100 + value[3], _text(value[4:])


def _password_algorithms(value: bytes) -> tuple[tuple[int, bytes], ...]:
    return tuple(proto._split_password_algorithms(value) or ())


def _integer(value: bytes, key: bytes) -> int:
    return int.from_bytes(value, "big")


_DECODERS: dict[str, Callable[[bytes, bytes], Any]] = {
    "address": _address,
    "xor-address": _xor_address,
    "string": lambda v, k: _text(v),
    "bytes": lambda v, k: v,
    "u32": _integer,
    "u64": _integer,
    "flags": _integer,
    "empty": lambda v, k: None,
    "error-code": lambda v, k: _error_code(v),
    "attr-list": lambda v, k: tuple(
        int.from_bytes(v[i : i + 2], "big") for i in range(0, len(v), 2)
    ),
    "crc32": _integer,
    "hmac-sha1": lambda v, k: v,
    "hmac-sha256": lambda v, k: v,
    "channel": lambda v, k: int.from_bytes(v[:2], "big"),
    "transport": lambda v, k: v[0],
    "family": lambda v, k: v[0],
    "even-port": lambda v, k: bool(v[0] & 0x80),
    "pw-algs": lambda v, k: _password_algorithms(v),
    "pw-alg": lambda v, k: (int.from_bytes(v[:2], "big"), v[4 : 4 + int.from_bytes(v[2:4], "big")]),
    "counter": lambda v, k: (v[2], v[3]),
    "addr-error": lambda v, k: (v[0], *_error_code(v)),
    "icmp": lambda v, k: (v[2] & 0x7F, v[3], int.from_bytes(v[4:8], "big")),
}
_KIND_OF = {code: spec.kind for code, spec in proto.ATTRIBUTES.items()}


def decode_attribute(
    code: int, declared: int, value: bytes, padding: bytes, key: bytes
) -> Attribute:
    """Decode one TLV value by its registry kind; raw bytes and a problem if it can't fit."""
    kind = _KIND_OF.get(code, "bytes")
    size = len(value)
    if size == declared and (
        kind == "string"
        or kind == "bytes"
        or size in _FIXED_SIZES.get(code, ())
        or (code in _ADDRESSES and size >= 8 and (size, value[1]) in _ADDRESS_SHAPES)
    ):
        problem = None  # the usual case, as well_formed decides it: no wording needed
    else:
        problem = proto.attribute_problem(code, declared, value, kind)
    decoded = value if problem else _DECODERS[kind](value, key)
    return Attribute(code, declared, value, padding, decoded, problem)


# --------------------------------------------------------------------------- messages


def decode(data: bytes, *, datagram: bool = True) -> Message | None:
    """Decode the message at the start of ``data``; None if it is not STUN at all.

    With ``datagram`` (UDP) bytes after the message are reported as malformed; in a stream
    they are the next message and ``Message.size`` says where this one ended.
    """
    kind = proto.classify(data)
    if kind is None:
        return None
    if kind == proto.TRUNCATED:
        return Message(
            kind,
            0,
            0,
            b"",
            malformed=[proto.truncated_problem(len(data))],
            size=len(data),
            data=data,
        )
    length = (data[2] << 8) | data[3]
    if kind == proto.CHANNEL_DATA:
        channel = (data[0] << 8) | data[1]
        return Message(
            kind, 0, length, b"", size=len(data), channel=channel, data=data[4 : 4 + length]
        )
    return _decode_stun(data, kind, length, datagram)


def _decode_stun(data: bytes, kind: str, length: int, datagram: bool) -> Message:
    end = min(_HEADER + length, len(data))
    classic = kind == proto.CLASSIC_MESSAGE
    key = data[4:20]
    opaque = not proto.known_method((data[0] << 8) | data[1])
    attributes: list[Attribute] = []
    problems: list[str] = []
    fingerprint: bool | None = None
    offset = _HEADER
    while offset < end:
        if offset + 4 > end:
            tail = data[offset:end]
            problems.append(proto.trailing_bytes_problem(len(tail)))
            attributes.append(Attribute(-1, len(tail), tail, b"", tail, problems[-1]))
            offset = end
            break
        code = (data[offset] << 8) | data[offset + 1]
        declared = (data[offset + 2] << 8) | data[offset + 3]
        value_end = offset + 4 + declared
        if value_end > end:
            value_end = end
        padding_end = min(offset + 4 + ((declared + 3) & ~3), end)
        value = data[offset + 4 : value_end]
        if opaque:
            problem = proto.opaque_attribute_problem(code, declared, value)
            attr = Attribute(code, declared, value, data[value_end:padding_end], value, problem,
                             True)  # fmt: skip
        else:
            attr = decode_attribute(code, declared, value, data[value_end:padding_end], key)
        if attr.problem:
            problems.append(attr.problem)
        elif code == proto.FINGERPRINT and fingerprint is None and len(value) == 4:
            covered = proto.covered_prefix(data, offset, 4)
            fingerprint = proto.fingerprint(covered) == int.from_bytes(value, "big")
        attributes.append(attr)
        offset = padding_end
    problems[:0] = proto.message_problems(length, end - _HEADER)
    if datagram and len(data) > end:
        problems.append(proto.extra_bytes_problem(len(data) - end))
    return Message(
        kind,
        (data[0] << 8) | data[1],
        length,
        key if classic else data[8:20],
        None if classic else int.from_bytes(data[4:8], "big"),
        attributes,
        problems,
        fingerprint,
        end,
        data=data[:end],
    )


# --------------------------------------------------------------------------- the fast path

_FIXED_SIZES: dict[int, frozenset[int]] = {
    code: frozenset(proto._FIXED_LENGTHS[spec.kind])
    for code, spec in proto.ATTRIBUTES.items()
    if spec.kind in proto._FIXED_LENGTHS and spec.kind not in ("address", "xor-address")
}
_FREE_FORM = frozenset(
    code for code, spec in proto.ATTRIBUTES.items() if spec.kind in ("string", "bytes")
)


_ADDRESSES = frozenset(
    code for code, spec in proto.ATTRIBUTES.items() if spec.kind in ("address", "xor-address")
)
_ADDRESS_SHAPES = frozenset({(8, proto.FAMILY_IPV4), (20, proto.FAMILY_IPV6)})


def well_formed(data: bytes, end: int) -> bool:
    """Exactly ``not decode(data).malformed`` for a STUN or classic message ending at
    ``end`` (header length fitting, checked by the caller), without decoding any value.

    The analyser calls this for every message and decodes in full only the ones it
    reports; ``tests/test_codec_fast_path.py`` holds the two to the same verdict.
    """
    offset = _HEADER
    known = proto.known_method((data[0] << 8) | data[1])
    while offset < end:
        if offset + 4 > end:
            return False
        code = (data[offset] << 8) | data[offset + 1]
        length = (data[offset + 2] << 8) | data[offset + 3]
        value_end = offset + 4 + length
        if value_end > end:
            return False
        if known and code not in _FREE_FORM and code in proto.ATTRIBUTES:
            sizes = _FIXED_SIZES.get(code)
            if sizes is not None:
                if length not in sizes:
                    return False
            elif code in _ADDRESSES:
                if (length, data[offset + 5] if length else 0) not in _ADDRESS_SHAPES:
                    return False
            elif proto.value_length_problem(_KIND_OF[code], data[offset + 4 : value_end]):
                return False
        offset += 4 + ((length + 3) & ~3)
    return True


def peek(data: bytes, datagram: bool = True) -> tuple[str, int, bytes, int, bool] | None:
    """(kind, message type, transaction ID, size, well formed) of the message at the start of
    ``data`` with no attribute decoded; None if it is not STUN. For ChannelData the type is
    0 and the ID empty; a truncated header is not well formed."""
    kind = proto.classify(data)
    if kind is None:
        return None
    size = len(data)
    if kind == proto.STUN_MESSAGE or kind == proto.CLASSIC_MESSAGE:
        length = (data[2] << 8) | data[3]
        end = _HEADER + length
        ok = end <= size and not length & 3 and (not datagram or end == size)
        if end > size:
            end = size
        ok = ok and well_formed(data, end)
        tid = data[8:20] if kind == proto.STUN_MESSAGE else data[4:20]
        return kind, (data[0] << 8) | data[1], tid, end, ok
    return kind, 0, b"", size, kind == proto.CHANNEL_DATA


def stream_chunks(data: bytes) -> tuple[list[tuple[str, bytes]], int]:
    """Cut a TCP payload into (kind, message bytes); returns them and the bytes consumed.

    Stops (without consuming) at a message that continues past ``data``, so the caller can
    wait for the next segment, and at bytes that start no frame. An RFC 4571 frame yields
    the message inside it.
    """
    chunks: list[tuple[str, bytes]] = []
    offset = 0
    while offset < len(data):
        frame = proto.stream_frame(data, offset)
        if frame is None:
            break
        kind, size = frame
        if offset + size > len(data):
            break
        chunk = data[offset : offset + size]
        chunks.append((kind, chunk[2:] if kind == proto.RFC4571_FRAME else chunk))
        offset += size
    return chunks, offset


def decode_stream(data: bytes) -> tuple[list[Message], int]:
    """Decode every complete message of a TCP payload (see :func:`stream_chunks`)."""
    chunks, consumed = stream_chunks(data)
    messages = [decode(chunk, datagram=kind != proto.CHANNEL_DATA) for kind, chunk in chunks]
    return [m for m in messages if m is not None], consumed
