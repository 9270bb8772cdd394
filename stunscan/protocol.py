"""STUN protocol knowledge, with no Scapy: the single source of protocol truth.

Everything that both decoders (the Scapy layer in ``stunscan.layers`` and the fast codec)
need to agree on lives here: the message-type bit interleave, method and class names, the
attribute registry (code, name, value kind), XOR address coding, FINGERPRINT,
MESSAGE-INTEGRITY(-SHA256) and the keys they use, and the "is this STUN" heuristics.

The tables are transcribed from ``shared/stun-registry.tsv`` and ``shared/stun-methods.tsv``;
``tests/test_protocol.py`` checks that they still agree, row for row.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import stringprep
import struct
import unicodedata
import zlib
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

HEADER_SIZE = 20
MAGIC_COOKIE = 0x2112A442
MAGIC_COOKIE_BYTES = MAGIC_COOKIE.to_bytes(4, "big")
FINGERPRINT_XOR = 0x5354554E
ATTRIBUTE_HEADER_SIZE = 4
MAX_MESSAGE_LENGTH = 0xFFFF
"""The largest value of the 16-bit length field: a message is at most 20 + 65,535 bytes."""

REFERENCE_PROBE = bytes.fromhex("000100002112a442") + bytes(12)
"""Shadowserver's probe: a Binding request with the magic cookie and an all-zero ID."""

# --------------------------------------------------------------------------- methods, classes


class MessageClass(IntEnum):
    """The two class bits of the message type (RFC 8489 5)."""

    REQUEST = 0
    INDICATION = 1
    SUCCESS_RESPONSE = 2
    ERROR_RESPONSE = 3


CLASS_NAMES: dict[int, str] = {
    MessageClass.REQUEST: "Request",
    MessageClass.INDICATION: "Indication",
    MessageClass.SUCCESS_RESPONSE: "Success Response",
    MessageClass.ERROR_RESPONSE: "Error Response",
}

_METHOD_TABLE: tuple[tuple[int, str, str], ...] = (
    (0x001, "Binding", "RFC 8489"),
    (0x002, "SharedSecret", "RFC 3489 (deprecated)"),
    (0x003, "Allocate", "RFC 8656"),
    (0x004, "Refresh", "RFC 8656"),
    (0x006, "Send", "RFC 8656"),
    (0x007, "Data", "RFC 8656"),
    (0x008, "CreatePermission", "RFC 8656"),
    (0x009, "ChannelBind", "RFC 8656"),
    (0x00A, "Connect", "RFC 6062"),
    (0x00B, "ConnectionBind", "RFC 6062"),
    (0x00C, "ConnectionAttempt", "RFC 6062"),
    (0x080, "GOOG-PING", "Google (WebRTC)"),
)
METHODS: dict[int, str] = {code: name for code, name, _ in _METHOD_TABLE}
METHOD_CODES: dict[str, int] = {name.lower(): code for code, name, _ in _METHOD_TABLE}


def message_type(method: int, cls: int) -> int:
    """Interleave a 12-bit method and a 2-bit class into the 14-bit message type."""
    if not 0 <= method <= 0xFFF or not 0 <= cls <= 3:
        raise ValueError(f"method {method:#x} or class {cls} out of range")
    return (
        (method & 0x000F)
        | (cls & 1) << 4
        | (method & 0x0070) << 1
        | (cls & 2) << 7
        | (method & 0x0F80) << 2
    )


def split_message_type(msg_type: int) -> tuple[int, int]:
    """Return (method, class) of a message type; the inverse of :func:`message_type`."""
    method = (msg_type & 0x000F) | (msg_type & 0x00E0) >> 1 | (msg_type & 0x3E00) >> 2
    cls = (msg_type >> 4) & 1 | (msg_type >> 7) & 2
    return method, cls


def method_name(method: int) -> str:
    return METHODS.get(method, f"Method 0x{method:03X}")


def known_method(msg_type: int) -> bool:
    """Whether the message type's method is in the registry (stun-methods.tsv). A message
    of another method (a vendor's, such as WhatsApp's types 0x0800-0x0805) borrows STUN's
    header, not its attributes' meanings: both decoders check only its structure."""
    return msg_type <= 0x3FFF and split_message_type(msg_type)[0] in METHODS


def message_type_name(msg_type: int) -> str:
    """'Binding Success Response'; 'unknown method (message type 0x0800)' for a method
    outside the registry (its class bits may mean nothing either); the hex value for a
    type outside STUN's 14 bits."""
    if msg_type > 0x3FFF:
        return f"0x{msg_type:04X}"
    method, cls = split_message_type(msg_type)
    if method not in METHODS:
        return f"unknown method (message type 0x{msg_type:04x})"
    return f"{method_name(method)} {CLASS_NAMES[cls]}"


def parse_message_type(text: str) -> int:
    """Accept 'Binding Request', 'allocate error response', '0x0101' or '257'."""
    words = text.strip()
    try:
        return int(words, 0)
    except ValueError:
        pass
    lowered = words.lower()
    for cls, cls_name in CLASS_NAMES.items():
        suffix = " " + cls_name.lower()
        if lowered.endswith(suffix):
            method_text = lowered[: -len(suffix)].strip()
            if method_text in METHOD_CODES:
                return message_type(METHOD_CODES[method_text], cls)
            if method_text.startswith("method "):
                return message_type(int(method_text[7:], 0), cls)
    raise ValueError(f"unknown STUN message type {text!r}")


# --------------------------------------------------------------------------- attributes


@dataclass(frozen=True, slots=True)
class AttributeSpec:
    """One row of the attribute registry."""

    code: int
    name: str
    kind: str
    reference: str


KINDS: tuple[str, ...] = (
    "address",
    "xor-address",
    "string",
    "bytes",
    "u32",
    "u64",
    "flags",
    "empty",
    "error-code",
    "attr-list",
    "crc32",
    "hmac-sha1",
    "hmac-sha256",
    "channel",
    "transport",
    "family",
    "even-port",
    "pw-algs",
    "pw-alg",
    "counter",
    "addr-error",
    "icmp",
)

_ATTRIBUTE_TABLE: tuple[tuple[int, str, str, str], ...] = (
    (0x0001, "MAPPED-ADDRESS", "address", "RFC 5389/8489 14.1"),
    (0x0002, "RESPONSE-ADDRESS", "address", "RFC 3489 11.2.2 (deprecated)"),
    (0x0003, "CHANGE-REQUEST", "flags", "RFC 3489 11.2.4, RFC 5780 7.2"),
    (0x0004, "SOURCE-ADDRESS", "address", "RFC 3489 11.2.5 (deprecated)"),
    (0x0005, "CHANGED-ADDRESS", "address", "RFC 3489 11.2.3 (deprecated)"),
    (0x0006, "USERNAME", "string", "RFC 8489 14.3"),
    (0x0007, "PASSWORD", "string", "RFC 3489 11.2.7 (deprecated)"),
    (0x0008, "MESSAGE-INTEGRITY", "hmac-sha1", "RFC 8489 14.5"),
    (0x0009, "ERROR-CODE", "error-code", "RFC 8489 14.8"),
    (0x000A, "UNKNOWN-ATTRIBUTES", "attr-list", "RFC 8489 14.9"),
    (0x000B, "REFLECTED-FROM", "address", "RFC 3489 11.2.11 (deprecated)"),
    (0x000C, "CHANNEL-NUMBER", "channel", "RFC 8656 18.1"),
    (0x000D, "LIFETIME", "u32", "RFC 8656 18.2"),
    (0x000E, "MS-ALTERNATE-SERVER", "address", "MS-TURN"),
    (0x000F, "MAGIC-COOKIE", "u32", "MS-TURN"),
    (0x0010, "BANDWIDTH", "u32", "draft TURN, MS-TURN (reserved)"),
    (0x0011, "DESTINATION-ADDRESS", "address", "MS-TURN (reserved)"),
    (0x0012, "XOR-PEER-ADDRESS", "xor-address", "RFC 8656 18.3"),
    (0x0013, "DATA", "bytes", "RFC 8656 18.4"),
    (0x0014, "REALM", "string", "RFC 8489 14.9"),
    (0x0015, "NONCE", "string", "RFC 8489 14.10"),
    (0x0016, "XOR-RELAYED-ADDRESS", "xor-address", "RFC 8656 18.5"),
    (0x0017, "REQUESTED-ADDRESS-FAMILY", "family", "RFC 8656 18.6"),
    (0x0018, "EVEN-PORT", "even-port", "RFC 8656 18.7"),
    (0x0019, "REQUESTED-TRANSPORT", "transport", "RFC 8656 18.8"),
    (0x001A, "DONT-FRAGMENT", "empty", "RFC 8656 18.9"),
    (0x001B, "ACCESS-TOKEN", "bytes", "RFC 7635 6.2"),
    (0x001C, "MESSAGE-INTEGRITY-SHA256", "hmac-sha256", "RFC 8489 14.6"),
    (0x001D, "PASSWORD-ALGORITHM", "pw-alg", "RFC 8489 14.12"),
    (0x001E, "USERHASH", "bytes", "RFC 8489 14.4"),
    (0x0020, "XOR-MAPPED-ADDRESS", "xor-address", "RFC 8489 14.2"),
    (0x0021, "TIMER-VAL", "u32", "draft TURN (reserved)"),
    (0x0022, "RESERVATION-TOKEN", "bytes", "RFC 8656 18.10"),
    (0x0024, "PRIORITY", "u32", "RFC 8445 7.1.1"),
    (0x0025, "USE-CANDIDATE", "empty", "RFC 8445 7.1.2"),
    (0x0026, "PADDING", "bytes", "RFC 5780 7.6"),
    (0x0027, "RESPONSE-PORT", "u32", "RFC 5780 7.5 (port in the high 16 bits)"),
    (0x002A, "CONNECTION-ID", "u32", "RFC 6062 6.2.1"),
    (0x8000, "ADDITIONAL-ADDRESS-FAMILY", "family", "RFC 8656 18.11"),
    (0x8001, "ADDRESS-ERROR-CODE", "addr-error", "RFC 8656 18.12"),
    (0x8002, "PASSWORD-ALGORITHMS", "pw-algs", "RFC 8489 14.11"),
    (0x8003, "ALTERNATE-DOMAIN", "string", "RFC 8489 14.16"),
    (0x8004, "ICMP", "icmp", "RFC 8656 18.13"),
    (0x8008, "MS-VERSION", "u32", "MS-TURN"),
    (
        0x8020,
        "XOR-MAPPED-ADDRESS (legacy)",
        "xor-address",
        "draft-ietf-behave-rfc3489bis-02; sent by old servers (Vovida stund)",
    ),
    (0x8022, "SOFTWARE", "string", "RFC 8489 14.14 (SERVER in RFC 3489bis drafts)"),
    (0x8023, "ALTERNATE-SERVER", "address", "RFC 8489 14.15"),
    (0x8025, "TRANSACTION_TRANSMIT_COUNTER", "counter", "RFC 7982 3.1"),
    (0x8027, "CACHE-TIMEOUT", "u32", "RFC 5780 7.8"),
    (0x8028, "FINGERPRINT", "crc32", "RFC 8489 14.7"),
    (0x8029, "ICE-CONTROLLED", "u64", "RFC 8445 7.1.3"),
    (0x802A, "ICE-CONTROLLING", "u64", "RFC 8445 7.1.3"),
    (0x802B, "RESPONSE-ORIGIN", "address", "RFC 5780 7.3"),
    (0x802C, "OTHER-ADDRESS", "address", "RFC 5780 7.4"),
    (0x802D, "ECN-CHECK-STUN", "u32", "RFC 6679 7.2.2"),
    (0x802E, "THIRD-PARTY-AUTHORIZATION", "string", "RFC 7635 6.1"),
    (0x802F, "ORIGIN", "string", "draft-ietf-tram-stun-origin"),
    (0x8030, "MOBILITY-TICKET", "bytes", "RFC 8016 3.1"),
    (0x8050, "MS-SEQUENCE-NUMBER", "bytes", "MS-TURN"),
    (0x8054, "MS-CANDIDATE-IDENTIFIER", "bytes", "MS-ICE2"),
    (0x8055, "MS-SERVICE-QUALITY", "bytes", "MS-TURN"),
    (0x8070, "MS-IMPLEMENTATION-VERSION", "u32", "MS-ICE2"),
    (0x8090, "MS-ALT-MAPPED-ADDRESS", "address", "MS-TURN"),
    (0xC001, "CISCO-STUN-FLOWDATA", "bytes", "Cisco"),
    (0xC057, "GOOG-NETWORK-INFO", "bytes", "Google (WebRTC)"),
    (0xC058, "GOOG-LAST-ICE-CHECK-RECEIVED", "bytes", "Google (WebRTC)"),
    (0xC059, "GOOG-MISC-INFO", "bytes", "Google (WebRTC)"),
    (0xC05A, "GOOG-OBSOLETE-1", "bytes", "Google (WebRTC)"),
    (0xC05B, "GOOG-CONNECTION-ID", "bytes", "Google (WebRTC)"),
    (0xC05C, "GOOG-DELTA", "bytes", "Google (WebRTC)"),
    (0xC05D, "GOOG-DELTA-ACK", "bytes", "Google (WebRTC)"),
    (0xC060, "GOOG-MESSAGE-INTEGRITY-32", "bytes", "Google (WebRTC)"),
)
ATTRIBUTES: dict[int, AttributeSpec] = {
    code: AttributeSpec(code, name, kind, ref) for code, name, kind, ref in _ATTRIBUTE_TABLE
}
ATTRIBUTE_CODES: dict[str, int] = {spec.name: spec.code for spec in ATTRIBUTES.values()}

MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003
SOURCE_ADDRESS = 0x0004
CHANGED_ADDRESS = 0x0005
USERNAME = 0x0006
MESSAGE_INTEGRITY = 0x0008
ERROR_CODE = 0x0009
REALM = 0x0014
NONCE = 0x0015
MESSAGE_INTEGRITY_SHA256 = 0x001C
PASSWORD_ALGORITHM = 0x001D
USERHASH = 0x001E
XOR_MAPPED_ADDRESS = 0x0020
PADDING = 0x0026
XOR_MAPPED_ADDRESS_LEGACY = 0x8020
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C

INTEGRITY_ATTRIBUTES = (MESSAGE_INTEGRITY, MESSAGE_INTEGRITY_SHA256)


def attribute_name(code: int) -> str:
    spec = ATTRIBUTES.get(code)
    return spec.name if spec else f"0x{code:04X}"


def attribute_kind(code: int) -> str:
    """The registry's value kind; 'bytes' for codes the registry does not know."""
    spec = ATTRIBUTES.get(code)
    return spec.kind if spec else "bytes"


def parse_attribute_code(text: str) -> int:
    """Accept a registry name ('XOR-MAPPED-ADDRESS') or a number ('0x0020')."""
    code = ATTRIBUTE_CODES.get(text.strip().upper())
    if code is not None:
        return code
    try:
        return int(text, 0)
    except ValueError:
        raise ValueError(f"unknown STUN attribute {text!r}") from None


def comprehension_required(code: int) -> bool:
    """Codes below 0x8000 must be understood by the receiver (RFC 8489 14)."""
    return code < 0x8000


def padded(length: int) -> int:
    """Length rounded up to the 4-byte boundary every attribute value is padded to."""
    return (length + 3) & ~3


_FIXED_LENGTHS: dict[str, tuple[int, ...]] = {
    "address": (8, 20),
    "xor-address": (8, 20),
    "u32": (4,),
    "u64": (8,),
    "flags": (4,),
    "empty": (0,),
    "crc32": (4,),
    "hmac-sha1": (20,),
    "channel": (4,),
    "transport": (4,),
    "family": (4,),
    "even-port": (1,),
    "counter": (4,),
    "icmp": (8,),
}
_MINIMUM_LENGTHS: dict[str, int] = {"error-code": 4, "addr-error": 4, "pw-alg": 4}


def value_length_problem(kind: str, value: bytes) -> str | None:
    """Why a value cannot be decoded as ``kind`` (None when it can).

    Both decoders fall back to raw bytes, marked malformed, for any value this rejects,
    so a short ERROR-CODE or a 5-byte address can never be misread.
    """
    length = len(value)
    fixed = _FIXED_LENGTHS.get(kind)
    if fixed is not None:
        if length not in fixed:
            sizes = " or ".join(str(n) for n in fixed)
            return f"{kind} value of {length} bytes (expected {sizes})"
        if kind in ("address", "xor-address"):
            family = value[1]
            if (family, length) not in ((FAMILY_IPV4, 8), (FAMILY_IPV6, 20)):
                return f"address family 0x{family:02x} with {length} bytes"
        return None
    minimum = _MINIMUM_LENGTHS.get(kind)
    if minimum is not None and length < minimum:
        return f"{kind} value of {length} bytes (at least {minimum})"
    if kind == "hmac-sha256" and not (16 <= length <= 32 and length % 4 == 0):
        return f"hmac-sha256 value of {length} bytes (16..32, a multiple of 4)"
    if kind == "attr-list" and length % 2:
        return f"attr-list value of odd length {length}"
    if kind == "pw-algs" and _split_password_algorithms(value) is None:
        return "password algorithm list does not tile its value"
    if kind == "pw-alg" and 4 + int.from_bytes(value[2:4], "big") > length:
        return "password algorithm parameters run past the value"
    return None


def _split_password_algorithms(value: bytes) -> list[tuple[int, bytes]] | None:
    """(algorithm, parameters) pairs of PASSWORD-ALGORITHMS, None if they do not tile."""
    result = []
    offset = 0
    while offset < len(value):
        if offset + 4 > len(value):
            return None
        algorithm, params_length = struct.unpack_from("!HH", value, offset)
        end = offset + 4 + params_length
        if end > len(value):
            return None
        result.append((algorithm, value[offset + 4 : end]))
        offset = offset + 4 + padded(params_length)
    return result


PASSWORD_ALGORITHM_NAMES: dict[int, str] = {0x0001: "MD5", 0x0002: "SHA-256"}
TRANSPORT_NAMES: dict[int, str] = {6: "TCP", 17: "UDP"}

# --------------------------------------------------------------------------- addresses

FAMILY_IPV4 = 0x01
FAMILY_IPV6 = 0x02
FAMILY_NAMES: dict[int, str] = {FAMILY_IPV4: "IPv4", FAMILY_IPV6: "IPv6"}


@dataclass(frozen=True, slots=True)
class Address:
    """A decoded (MAPPED- or XOR-) address attribute value."""

    family: int
    port: int
    address: str

    def __str__(self) -> str:
        if self.family == FAMILY_IPV6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


def decode_address(value: bytes) -> Address:
    """Decode a plain address value; ValueError if its length or family is wrong."""
    problem = value_length_problem("address", value)
    if problem:
        raise ValueError(problem)
    family = value[1]
    port = int.from_bytes(value[2:4], "big")
    return Address(family, port, str(ipaddress.ip_address(value[4:])))


def encode_address(address: str, port: int) -> bytes:
    ip = ipaddress.ip_address(address)
    family = FAMILY_IPV4 if ip.version == 4 else FAMILY_IPV6
    return struct.pack("!BBH", 0, family, port) + ip.packed


def xor_bytes(data: bytes, key: bytes) -> bytes:
    return (int.from_bytes(data, "big") ^ int.from_bytes(key[: len(data)], "big")).to_bytes(
        len(data), "big"
    )


def xor_address_value(value: bytes, xor_key: bytes) -> bytes:
    """XOR (or un-XOR: it is its own inverse) the port and address of an address value.

    ``xor_key`` is bytes 4..20 of the message header: the magic cookie then the
    transaction ID. IPv4 uses its first 4 bytes, IPv6 all 16, the port the first 2. For a
    classic RFC 3489 message the same 16 bytes are the 128-bit transaction ID, which is
    what old servers (Vovida stund's 0x8020) XOR with.
    """
    return value[:2] + xor_bytes(value[2:4], xor_key) + xor_bytes(value[4:], xor_key)


def decode_xor_address(value: bytes, xor_key: bytes) -> Address:
    problem = value_length_problem("xor-address", value)
    if problem:
        raise ValueError(problem)
    return decode_address(xor_address_value(value, xor_key))


def encode_xor_address(address: str, port: int, xor_key: bytes) -> bytes:
    return xor_address_value(encode_address(address, port), xor_key)


# --------------------------------------------------------------------------- integrity


def crc32(data: bytes) -> int:
    """The CRC-32 FINGERPRINT starts from (ISO-HDLC, as zlib and Ethernet compute it)."""
    return zlib.crc32(data) & 0xFFFFFFFF


def fingerprint(data: bytes) -> int:
    """FINGERPRINT value over ``data`` (the message up to the attribute)."""
    return (zlib.crc32(data) ^ FINGERPRINT_XOR) & 0xFFFFFFFF


def hmac_sha1(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha1).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def covered_prefix(message: bytes, attr_offset: int, attr_value_length: int) -> bytes:
    """The bytes an integrity attribute at ``attr_offset`` is computed over.

    That is the message up to the attribute, with the header's length field rewritten to
    end just after this attribute (RFC 8489 14.5-14.7), whatever followed it.
    """
    length = attr_offset + ATTRIBUTE_HEADER_SIZE + attr_value_length - HEADER_SIZE
    return message[:2] + length.to_bytes(2, "big") + message[4:attr_offset]


def saslprep(text: str) -> str:
    """SASLprep (RFC 4013) of a password, as RFC 8489 9.2.2 requires for long-term keys.

    Map (B.1 to nothing, C.1.2 to space), NFKC, then reject prohibited output and bad
    bidirectional text. Unassigned code points are allowed (stored-string rules are not
    needed for a query).
    """
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    normal = unicodedata.normalize("NFKC", mapped)
    prohibited = (
        stringprep.in_table_c12,
        stringprep.in_table_c21_c22,
        stringprep.in_table_c3,
        stringprep.in_table_c4,
        stringprep.in_table_c5,
        stringprep.in_table_c6,
        stringprep.in_table_c7,
        stringprep.in_table_c8,
        stringprep.in_table_c9,
    )
    for ch in normal:
        if any(check(ch) for check in prohibited):
            raise ValueError(f"SASLprep: prohibited character U+{ord(ch):04X}")
    if any(stringprep.in_table_d1(ch) for ch in normal):
        if any(stringprep.in_table_d2(ch) for ch in normal):
            raise ValueError("SASLprep: mixed right-to-left and left-to-right text")
        if not (stringprep.in_table_d1(normal[0]) and stringprep.in_table_d1(normal[-1])):
            raise ValueError("SASLprep: right-to-left text must start and end with RTL")
    return normal


def short_term_key(password: str) -> bytes:
    """Short-term credential key: the SASLprep'd password itself (RFC 8489 9.1.1)."""
    return saslprep(password).encode()


def _material(value: str | bytes, what: str) -> bytes:
    """A key ingredient as bytes: text is UTF-8, bytes (REALM's value as sent) are taken as
    they are; anything else is a mistake that would otherwise be hashed as its repr."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def long_term_key(
    username: str | bytes, realm: str | bytes, password: str | bytes, algorithm: str = "md5"
) -> bytes:
    """Long-term credential key: MD5 or SHA-256 of 'username:realm:password' (RFC 8489 9.2.2).

    The password is SASLprep'd (bytes are decoded as UTF-8 first); the username and realm
    may be given as the bytes a message carries (``get_attribute("REALM").value``).
    """
    if isinstance(password, bytes | bytearray | memoryview):
        password = bytes(password).decode("utf-8")
    elif not isinstance(password, str):
        raise TypeError(f"password must be str or bytes, not {type(password).__name__}")
    material = b":".join(
        (_material(username, "username"), _material(realm, "realm"), saslprep(password).encode())
    )
    if algorithm.lower() in ("md5", "1"):
        return hashlib.md5(material).digest()
    if algorithm.lower() in ("sha256", "sha-256", "2"):
        return hashlib.sha256(material).digest()
    raise ValueError(f"unknown password algorithm {algorithm!r}")


def userhash(username: str | bytes, realm: str | bytes) -> bytes:
    """USERHASH value: SHA-256 of 'username:realm' (RFC 8489 14.4)."""
    return hashlib.sha256(
        _material(username, "username") + b":" + _material(realm, "realm")
    ).digest()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a user knows to check MESSAGE-INTEGRITY: a password (short-term alone, long-term
    with a username and realm), or the HMAC key itself."""

    password: str | None = None
    username: str | None = None
    realm: str | None = None
    key: bytes | None = None

    @property
    def long_term(self) -> bool:
        return self.username is not None or self.realm is not None

    def __bool__(self) -> bool:
        return self.password is not None or self.key is not None


@dataclass(frozen=True, slots=True)
class DerivedKey:
    """An HMAC key and how it was made, in words and numbers (for ``explain``)."""

    key: bytes
    how: str
    material: bytes = b""
    """The bytes hashed into a long-term key ('user:realm:password'), for the walk-through."""


def _string_attribute(message: bytes, code: int) -> bytes | None:
    for attr in iter_attributes(message, HEADER_SIZE + message_length_field(message)):
        if attr.code == code and not attr.truncated:
            return attr.value
    return None


def derive_key(message: bytes, credentials: Credentials) -> DerivedKey:
    """The key to check ``message``'s integrity with: ``key`` as given; a short-term key
    (SASLprep(password)); or a long-term one, MD5 unless the message's PASSWORD-ALGORITHM
    says SHA-256, from the username and realm given or, when not given, the message's own
    USERNAME and REALM. ValueError if a long-term ingredient is missing or SASLprep fails."""
    if credentials.key is not None:
        return DerivedKey(credentials.key, "the key given (--key)")
    if credentials.password is None:
        raise ValueError("no password and no key")
    if not credentials.long_term:
        key = short_term_key(credentials.password)
        return DerivedKey(key, "short-term: the key is SASLprep(password) itself (RFC 8489 9.1.1)")
    username = (
        credentials.username.encode()
        if credentials.username is not None
        else _string_attribute(message, USERNAME)
    )
    realm = (
        credentials.realm.encode()
        if credentials.realm is not None
        else _string_attribute(message, REALM)
    )
    if username is None or realm is None:
        missing = "username" if username is None else "realm"
        raise ValueError(f"a long-term key needs the {missing} (the message carries none)")
    algorithm = "md5"
    chosen = _string_attribute(message, PASSWORD_ALGORITHM)
    if chosen is not None and len(chosen) >= 2 and int.from_bytes(chosen[:2], "big") == 2:
        algorithm = "sha256"
    key = long_term_key(username, realm, credentials.password, algorithm)
    material = username + b":" + realm + b":" + saslprep(credentials.password).encode()
    name = "MD5" if algorithm == "md5" else "SHA-256 (the message's PASSWORD-ALGORITHM)"
    how = f"long-term: {name} of username:realm:SASLprep(password) (RFC 8489 9.2.2)"
    return DerivedKey(key, how, material)


def integrity_verdicts(message: bytes, credentials: Credentials) -> list[tuple[str, bool]]:
    """(attribute name, valid) for each MESSAGE-INTEGRITY(-SHA256) of ``message`` checked
    with the key ``credentials`` make for it. ValueError if no key can be made for it (a
    long-term ingredient missing from both the credentials and the message)."""
    key = derive_key(message, credentials).key
    return [(attribute_name(a.code), ok) for a, _, ok in integrity_results(message, key)]


def integrity_results(message: bytes, key: bytes) -> list[tuple[RawAttribute, bytes, bool]]:
    """Every MESSAGE-INTEGRITY and MESSAGE-INTEGRITY-SHA256 of ``message``: the attribute,
    the HMAC computed with ``key`` over what it covers, and whether it matches."""
    results = []
    for attr in iter_attributes(message, HEADER_SIZE + message_length_field(message)):
        if attr.code in INTEGRITY_ATTRIBUTES and not attr.truncated:
            digest = hmac_sha1 if attr.code == MESSAGE_INTEGRITY else hmac_sha256
            expected = digest(key, covered_prefix(message, attr.offset, attr.length))
            ok = integrity_length_ok(attr.code, attr.length) and hmac.compare_digest(
                expected[: attr.length], attr.value
            )
            results.append((attr, expected, ok))
    return results


# --------------------------------------------------------------------------- walking


@dataclass(slots=True)
class RawAttribute:
    """One attribute TLV as it sits in a message; ``truncated`` if it runs past the end."""

    offset: int
    code: int
    length: int
    value: bytes
    padding: bytes
    truncated: bool


def iter_attributes(
    message: bytes, end: int | None = None, codes: Container[int] | None = None
) -> Iterator[RawAttribute]:
    """Walk the TLVs between the header and ``end`` (default: the end of ``message``).

    Iterative and bounded by the buffer: a length past the end yields one truncated
    attribute holding what is there; fewer than 4 trailing bytes yield a truncated
    attribute of code -1. With ``codes``, only the attributes of those codes are yielded
    (the same walk, without an object for each of a hostile message's 16,383 others).
    """
    stop = len(message) if end is None else min(end, len(message))
    offset = HEADER_SIZE
    while offset < stop:
        if offset + ATTRIBUTE_HEADER_SIZE > stop:
            if codes is None or -1 in codes:
                yield RawAttribute(offset, -1, stop - offset, message[offset:stop], b"", True)
            return
        code, length = struct.unpack_from("!HH", message, offset)
        value_start = offset + ATTRIBUTE_HEADER_SIZE
        value_end = value_start + length
        if value_end > stop:
            if codes is None or code in codes:
                yield RawAttribute(offset, code, length, message[value_start:stop], b"", True)
            return
        padding_end = min(value_start + padded(length), stop)
        if codes is not None and code not in codes:
            offset = padding_end
            continue
        yield RawAttribute(
            offset,
            code,
            length,
            message[value_start:value_end],
            message[value_end:padding_end],
            False,
        )
        offset = padding_end


def check_fingerprint(message: bytes) -> bool | None:
    """True/False if the message carries a FINGERPRINT that does/does not verify, else None."""
    end = HEADER_SIZE + message_length_field(message)
    for attr in iter_attributes(message, end, (FINGERPRINT,)):
        if not attr.truncated and attr.length == 4:
            expected = fingerprint(covered_prefix(message, attr.offset, 4))
            return int.from_bytes(attr.value, "big") == expected
    return None


def integrity_length_ok(code: int, length: int) -> bool:
    """MESSAGE-INTEGRITY is 20 bytes; MESSAGE-INTEGRITY-SHA256 16 to 32, a multiple of 4
    (RFC 8489 14.6). Any other length never verifies: a zero-length HMAC would otherwise
    compare equal to the first zero bytes of any digest, whatever the key."""
    if code == MESSAGE_INTEGRITY:
        return length == 20
    return 16 <= length <= 32 and length % 4 == 0


def check_integrity(message: bytes, key: bytes) -> bool | None:
    """Verify the first MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 with ``key``.

    None when the message has neither.
    """
    end = HEADER_SIZE + message_length_field(message)
    for attr in iter_attributes(message, end, INTEGRITY_ATTRIBUTES):
        if not attr.truncated:
            if not integrity_length_ok(attr.code, attr.length):
                return False
            digest = hmac_sha1 if attr.code == MESSAGE_INTEGRITY else hmac_sha256
            data = covered_prefix(message, attr.offset, attr.length)
            expected = digest(key, data)[: attr.length]
            return hmac.compare_digest(expected, attr.value)
    return None


def message_length_field(message: bytes) -> int:
    return int.from_bytes(message[2:4], "big") if len(message) >= 4 else 0


# --------------------------------------------------------------------------- building


def encode_message(
    msg_type: int,
    transaction_id: bytes,
    attributes: Iterable[tuple[int, bytes]] = (),
    *,
    fingerprint_last: bool = False,
) -> bytes:
    """A whole message from its type, ID and (code, value) attributes, zero-padded.

    A 12-byte ID makes an RFC 5389/8489 message (magic cookie first); a 16-byte one a
    classic RFC 3489 message. With ``fingerprint_last`` a FINGERPRINT over everything before
    it ends the message. This is the Scapy-free builder for probes, where Scapy's import
    time would be most of the run; the layer builds the same bytes (tests/test_probe_cli.py).
    """
    if len(transaction_id) == 12:
        ident = MAGIC_COOKIE_BYTES + transaction_id
    elif len(transaction_id) == 16:
        ident = transaction_id
    else:
        raise ValueError("a transaction ID is 12 bytes (or 16 for classic STUN)")
    body = b"".join(
        struct.pack("!HH", code, len(value)) + value + bytes(padded(len(value)) - len(value))
        for code, value in attributes
    )
    if fingerprint_last:
        length = len(body) + ATTRIBUTE_HEADER_SIZE + 4
        covered = struct.pack("!HH", msg_type, length) + ident + body
        body += struct.pack("!HHI", FINGERPRINT, 4, fingerprint(covered))
    if len(body) > MAX_MESSAGE_LENGTH:
        raise ValueError(f"attributes of {len(body)} bytes do not fit a STUN message")
    return struct.pack("!HH", msg_type, len(body)) + ident + body


# --------------------------------------------------------------------------- heuristics

CLASSIC_MESSAGE_TYPES = frozenset(
    message_type(method, cls) for method in (0x001, 0x002) for cls in (0, 2, 3)
)


def looks_like_stun(data: bytes, *, exact: bool = True) -> bool:
    """The RFC 8489 heuristic: top bits 00, magic cookie, length a multiple of 4 that fits.

    With ``exact`` (datagrams) the length must account for every byte after the header;
    without it (a stream) the message need only fit in what is there.
    """
    if len(data) < HEADER_SIZE or data[0] & 0xC0 or data[4:8] != MAGIC_COOKIE_BYTES:
        return False
    length = (data[2] << 8) | data[3]
    if length & 3:
        return False
    total = HEADER_SIZE + length
    return total == len(data) if exact else total <= len(data)


def looks_like_classic_stun(data: bytes, *, exact: bool = True) -> bool:
    """RFC 3489 recognition: a classic Binding/SharedSecret type, no magic cookie, and
    attributes of known codes that tile the message exactly. Strict, because without the
    cookie little else tells STUN from noise."""
    if len(data) < HEADER_SIZE or data[4:8] == MAGIC_COOKIE_BYTES:
        return False
    msg_type = (data[0] << 8) | data[1]
    length = (data[2] << 8) | data[3]
    if msg_type not in CLASSIC_MESSAGE_TYPES or length & 3:
        return False
    total = HEADER_SIZE + length
    if total != len(data) if exact else total > len(data):
        return False
    return all(
        not attr.truncated and attr.code in ATTRIBUTES for attr in iter_attributes(data, total)
    )


def looks_like_rfc4571_stun(data: bytes, offset: int = 0) -> bool:
    """An RFC 4571 frame (16-bit length prefix, as ICE-TCP uses) holding one STUN message."""
    inner = data[offset + 2 : offset + 22]
    if len(inner) < HEADER_SIZE or inner[0] & 0xC0 or inner[4:8] != MAGIC_COOKIE_BYTES:
        return False
    frame_length = (data[offset] << 8) | data[offset + 1]
    return frame_length == HEADER_SIZE + ((inner[2] << 8) | inner[3])


def looks_like_channel_data(data: bytes, *, exact: bool = True) -> bool:
    """TURN ChannelData: channel number 0x4000-0x7FFF and a length that fits.

    Over UDP the datagram may carry up to 3 bytes of padding after the data.
    """
    if len(data) < 4 or data[0] & 0xC0 != 0x40:
        return False
    total = 4 + ((data[2] << 8) | data[3])
    if exact:
        return total <= len(data) <= padded(total)
    return total <= len(data)


# --------------------------------------------------------------------------- classification

STUN_MESSAGE = "stun"
CLASSIC_MESSAGE = "classic"
CHANNEL_DATA = "channel-data"
TRUNCATED = "truncated"
RFC4571_FRAME = "rfc4571"


def classify(data: bytes, offset: int = 0) -> str | None:
    """What the bytes at ``offset`` are: STUN, classic, ChannelData, truncated, or None.

    Top bits 01 is TURN ChannelData if its length fits; 00 with the magic cookie is STUN
    even when malformed; 00 without it is classic only for a classic message type; fewer
    than 20 bytes starting with 00 is a truncated header; anything else is not STUN. Both
    decoders dispatch on this, so they always agree on what a message is.
    """
    available = len(data) - offset
    if available <= 0:
        return None
    top = data[offset] & 0xC0
    if top == 0x40:
        if available >= 4 and 4 + ((data[offset + 2] << 8) | data[offset + 3]) <= available:
            return CHANNEL_DATA
        return None
    if top:
        return None
    if available < HEADER_SIZE:
        return TRUNCATED
    if data[offset + 4 : offset + 8] == MAGIC_COOKIE_BYTES:
        return STUN_MESSAGE
    if ((data[offset] << 8) | data[offset + 1]) in CLASSIC_MESSAGE_TYPES:
        return CLASSIC_MESSAGE
    return None


def stream_frame(data: bytes, offset: int) -> tuple[str, int] | None:
    """The kind and size of the frame at ``offset`` of a TCP stream, None if none starts there.

    STUN and classic messages take 20 + length; ChannelData is padded to 4 over TCP
    (RFC 8656 12.5) and must fit (text such as "RSP/1.0" also starts with bits 01); an
    RFC 4571 frame takes its 2-byte prefix plus the message. A STUN size may run past the
    data when the message continues in a later segment.
    """
    if len(data) - offset < 4:
        return None
    kind = classify(data, offset)
    length = (data[offset + 2] << 8) | data[offset + 3]
    if kind == CHANNEL_DATA:
        return kind, min(padded(4 + length), len(data) - offset)
    if kind == TRUNCATED:  # a header cut by the segment's end: frame it by what is there
        if data[offset + 4 : offset + 8] == MAGIC_COOKIE_BYTES:
            return STUN_MESSAGE, HEADER_SIZE + length
        if ((data[offset] << 8) | data[offset + 1]) in CLASSIC_MESSAGE_TYPES:
            return CLASSIC_MESSAGE, HEADER_SIZE + length
        return None
    if kind == STUN_MESSAGE:
        return kind, HEADER_SIZE + length
    if looks_like_rfc4571_stun(data, offset):
        return RFC4571_FRAME, 2 + ((data[offset] << 8) | data[offset + 1])
    if kind == CLASSIC_MESSAGE:
        return kind, HEADER_SIZE + length
    return None


# --------------------------------------------------------------------------- problems
# The wording of every malformation, shared by both decoders so that they report alike.


def attribute_problem(
    code: int, declared: int, value: bytes, kind: str | None = None
) -> str | None:
    """Why one attribute is malformed (value short of its length, or wrong for its kind)."""
    if len(value) < declared:
        return f"{attribute_name(code)} declares {declared} bytes, {len(value)} present"
    problem = value_length_problem(kind or attribute_kind(code), value)
    return f"{attribute_name(code)}: {problem}" if problem else None


def opaque_attribute_name(code: int) -> str:
    """An attribute of a message of unknown method: its code only (the registry's name
    would claim a meaning the vendor may not give it)."""
    return f"0x{code:04X}"


def opaque_attribute_problem(code: int, declared: int, value: bytes) -> str | None:
    """The one thing an attribute of an unknown method can get wrong: its length."""
    if len(value) < declared:
        return f"{opaque_attribute_name(code)} declares {declared} bytes, {len(value)} present"
    return None


def trailing_bytes_problem(count: int) -> str:
    return f"{count} trailing bytes, too few for an attribute"


def message_problems(declared: int, body: int) -> list[str]:
    """Header-level malformations: a length beyond the data, or not a multiple of 4."""
    problems = []
    if declared > body:
        problems.append(f"length field says {declared} bytes, {body} follow the header")
    if declared % 4:
        problems.append(f"length {declared} is not a multiple of 4")
    return problems


def extra_bytes_problem(count: int) -> str:
    """A datagram with bytes after the message (its length field should have covered them)."""
    return f"{count} bytes follow the message"


def truncated_problem(size: int) -> str:
    return f"truncated header: {size} bytes, STUN needs {HEADER_SIZE}"
