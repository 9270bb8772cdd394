"""A report row straight from a response's bytes, for ``--csv`` output at scale.

The row needs the header and four attributes (MAPPED-, XOR-MAPPED-, SOFTWARE,
FINGERPRINT); the full decoder builds an object per attribute and checks them all, which
is most of the time a large capture spends on output. Here the attributes are walked as
``codec._decode_stun`` walks them, only the four are decoded, by the same rules
(``codec.decode_attribute``: a short or misshapen value counts as absent), and the cells
come from ``record.row_cells``, as :meth:`Record.row` does. JSON lines and the terminal
table still take full records. ``tests/test_fast_pcap.py`` compares the two on the corpus
and on generated messages.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass

from stunscan import codec
from stunscan import protocol as proto
from stunscan.codec import _ip_text
from stunscan.enrich.columns import EMPTY_COLUMNS
from stunscan.record import _utc_text, csv_field, row_cells

ROW_ATTRIBUTES = (
    proto.MAPPED_ADDRESS,
    proto.XOR_MAPPED_ADDRESS,
    proto.XOR_MAPPED_ADDRESS_LEGACY,
    proto.SOFTWARE,
    proto.FINGERPRINT,
)
"""The attributes a report row reads (the scan's batch rows take them in this order)."""
_KINDS = {code: proto.ATTRIBUTES[code].kind for code in ROW_ATTRIBUTES}
ENABLED = _KINDS == {
    proto.MAPPED_ADDRESS: "address",
    proto.XOR_MAPPED_ADDRESS: "xor-address",
    proto.XOR_MAPPED_ADDRESS_LEGACY: "xor-address",
    proto.SOFTWARE: "string",
    proto.FINGERPRINT: "crc32",
}
"""The rules below are those of these kinds; a registry that says otherwise turns this off."""


def cells(
    data: bytes,
    when: float,
    ip: str,
    port: int,
    transport: str,
    request_size: int | None,
    size: int | None = None,
) -> tuple[list[str], float, str] | None:
    """(cells, amplification, SOFTWARE) of the report row of the message ``data`` from
    ``ip``:``port``; None if it is not a STUN or classic message. ``size`` is the response
    size the row reports: the message's own extent unless given (a scan reports the whole
    UDP payload, as its records do)."""
    kind = proto.classify(data)
    if not ENABLED or (kind != proto.STUN_MESSAGE and kind != proto.CLASSIC_MESSAGE):
        return None
    length = (data[2] << 8) | data[3]
    end = min(proto.HEADER_SIZE + length, len(data))
    key = data[4:20]
    found: dict[int, tuple[int, bytes]] = {}
    if proto.known_method((data[0] << 8) | data[1]):  # (a vendor's codes need not mean
        found = _walk(data[:end], end)[0]  # STUN's: codec leaves its message opaque)
    mapped = _address(found.get(proto.MAPPED_ADDRESS), key, xor=False)
    xor = _address(found.get(proto.XOR_MAPPED_ADDRESS), key, xor=True) or _address(
        found.get(proto.XOR_MAPPED_ADDRESS_LEGACY), key, xor=True
    )
    software = ""
    item = found.get(proto.SOFTWARE)
    if item is not None and len(item[1]) == item[0]:
        software = item[1].decode("utf-8", "replace")
    fingerprint = None
    item = found.get(proto.FINGERPRINT)
    if item is not None and len(item[1]) == item[0] == 4:
        fingerprint = int.from_bytes(item[1], "big")
    classic = kind == proto.CLASSIC_MESSAGE
    size = end if size is None else size
    amplification = size / (request_size or len(proto.REFERENCE_PROBE))
    row = row_cells(
        when,
        ip,
        port,
        transport,
        key if classic else data[8:20],
        None if classic else int.from_bytes(data[4:8], "big"),
        length,
        (data[0] << 8) | data[1],
        mapped,
        xor,
        software,
        fingerprint,
        amplification,
        size,
    )
    return row, amplification, software


def _address(item: tuple[int, bytes] | None, key: bytes, *, xor: bool) -> proto.Address | None:
    """An address value as the decoder reads it, or None if absent or malformed."""
    if item is None:
        return None
    declared, value = item
    size = len(value)
    if size != declared or (size, value[1] if size >= 2 else -1) not in ((8, 1), (20, 2)):
        return None
    if size == 8:  # IPv4: only the first 4 bytes of the key (STUN's cookie) enter
        return _ipv4_address(value, key[:4] if xor else None)
    if xor:
        value = proto.xor_address_value(value, key)
    return codec._address(value, key)


@functools.lru_cache(maxsize=4096)
def _ipv4_address(value: bytes, xor_key: bytes | None) -> proto.Address:
    """An IPv4 address value, un-XORed with ``xor_key`` if given; cached, because a scan's
    answers all carry the same XOR-MAPPED-ADDRESS (ours) under the same cookie."""
    if xor_key is not None:
        value = proto.xor_address_value(value, xor_key)
    return codec._address(value, xor_key or b"")


@dataclass(slots=True)
class Line:
    """A report row as its CSV line, made straight from the bytes (see :func:`line`)."""

    text: str
    """``record.csv_line`` of the row's cells, newline included, the enrichment columns
    left as ``EMPTY_COLUMNS`` (``enrich.columns.fill_line`` fills them)."""
    amplification: float
    software: str
    signed: bool
    """Whether the message carries MESSAGE-INTEGRITY(-SHA256) (``roles.is_signed``)."""


_INTEGRITY = frozenset(proto.INTEGRITY_ATTRIBUTES)
_ATTRIBUTE_HEADER = struct.Struct(">HH").unpack_from


def line(
    data: bytes,
    when: float,
    ip: str,
    port: int,
    transport: str,
    request_size: int | None,
) -> Line | None:
    """The row :func:`cells` makes, as the line ``record.csv_line`` writes of it, in one
    walk of the attributes and one f-string (the analyser writes a line per server found,
    and a scan's capture finds tens of thousands). None where this does not decide: not a
    STUN or classic message, or a vendor's method (the caller then takes :func:`cells`).
    ``tests/test_fast_pcap.py`` holds the two to the same lines."""
    kind = proto.classify(data)
    if not ENABLED or (kind != proto.STUN_MESSAGE and kind != proto.CLASSIC_MESSAGE):
        return None
    msg_type = (data[0] << 8) | data[1]
    if not proto.known_method(msg_type):
        return None
    length = (data[2] << 8) | data[3]
    end = min(proto.HEADER_SIZE + length, len(data))
    key = data[4:20]
    found, signed = _walk(data[:end], end)
    classic = kind == proto.CLASSIC_MESSAGE
    mapped = _address_cells(found.get(proto.MAPPED_ADDRESS), key, xor=False)
    xor = _address_cells(found.get(proto.XOR_MAPPED_ADDRESS), key, xor=True) or _address_cells(
        found.get(proto.XOR_MAPPED_ADDRESS_LEGACY), key, xor=True
    )
    software = field = ""
    item = found.get(proto.SOFTWARE)
    if item is not None and len(item[1]) == item[0]:
        software, field = software_text(item[1])
    fingerprint = ""
    item = found.get(proto.FINGERPRINT)
    if item is not None and len(item[1]) == item[0] == 4:
        fingerprint = f"0x{item[1].hex()}"
    amplification, tail = ratio_text(end, request_size or len(proto.REFERENCE_PROBE))
    ident = key.hex() if classic else data[8:20].hex()
    cookie = ident[:8] if classic else "2112a442"
    text = (
        f"{_utc_text(math.floor(when))},medium,{ip},{transport},{port}{EMPTY_COLUMNS}"
        f"{ident},{cookie},{length},{type_text(msg_type)},{mapped or ',,'},{xor or ',,'},"
        f"{field},{fingerprint},{tail}"
    )
    return Line(text, amplification, software, signed)


def _walk(message: bytes, end: int) -> tuple[dict[int, tuple[int, bytes]], bool]:
    """The first of each row attribute as (declared length, value cut at the message's
    end), and whether MESSAGE-INTEGRITY(-SHA256) is there (the headers ``roles.is_signed``
    reads). ``message``: the bytes up to the message's ``end``."""
    found: dict[int, tuple[int, bytes]] = {}
    signed = False
    offset = proto.HEADER_SIZE
    header = _ATTRIBUTE_HEADER
    while offset + 4 <= end:  # (fewer bytes left: trailing bytes, no attribute)
        code, declared = header(message, offset)
        if code in _KINDS:
            if code not in found:
                found[code] = (declared, message[offset + 4 : offset + 4 + declared])
        elif code in _INTEGRITY:
            signed = True
        offset += 4 + ((declared + 3) & ~3)
    return found, signed


def _address_cells(item: tuple[int, bytes] | None, key: bytes, *, xor: bool) -> str:
    """An address attribute's three cells ("01,192.0.2.1,3478"), or "" if absent or
    malformed (:func:`_address` decides)."""
    address = _address(item, key, xor=xor)
    return "" if address is None else f"{address.family:02x},{address.address},{address.port}"


@functools.lru_cache(maxsize=4096)
def ipv4_cells(number: int, port: int) -> str:
    """An IPv4 address attribute's three cells, from its numbers, cached: every answer of a
    scan carries the same XOR-MAPPED-ADDRESS, ours (codec's text of the address)."""
    return f"01,{_ip_text(number.to_bytes(4, 'big'))},{port}"


@functools.lru_cache(maxsize=4096)
def ratio_text(size: int, basis: int) -> tuple[float, str]:
    """The amplification and the row's last two cells and newline ("2.60,52\\n"): a scan's
    answers have few sizes."""
    amplification = size / basis
    return amplification, f"{amplification:.2f},{size}\n"


@functools.lru_cache(maxsize=1024)
def type_text(msg_type: int) -> str:
    return f"{msg_type:04x}"


@functools.lru_cache(maxsize=1024)
def software_text(value: bytes) -> tuple[str, str]:
    """A SOFTWARE value's text and its CSV cell (a scan sees few distinct ones; a hostile
    server sending a new one each time only misses the cache)."""
    text = value.decode("utf-8", "replace")
    return text, csv_field(text)
