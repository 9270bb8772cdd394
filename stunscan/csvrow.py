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

from stunscan import codec
from stunscan import protocol as proto
from stunscan.record import row_cells

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
    offset = proto.HEADER_SIZE
    if not proto.known_method((data[0] << 8) | data[1]):
        offset = end  # a vendor's message: its codes need not mean STUN's (codec: opaque)
    while offset + 4 <= end:  # (fewer bytes left: trailing bytes, no attribute)
        code = (data[offset] << 8) | data[offset + 1]
        declared = (data[offset + 2] << 8) | data[offset + 3]
        if code in _KINDS and code not in found:
            found[code] = (declared, data[offset + 4 : min(offset + 4 + declared, end)])
        offset = min(offset + 4 + ((declared + 3) & ~3), end)
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
