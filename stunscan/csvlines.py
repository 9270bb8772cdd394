"""The report's CSV lines of many messages at once, with numpy: ``csvrow.line`` in bulk.

A scan's sniffer writes a line per answer, and the offline analyser one per server found
(tens of thousands in a scan's capture); reading a row's four attributes from each
message in Python costs more than finding the message. Here the attribute walk, the
address values (un-XORed) and the header fields of a whole batch are numpy columns over
the messages' bytes; what stays per message is text: cached address and SOFTWARE text,
hex of the transaction ID and one f-string.

The rules are csvrow's (the first of each attribute counts; a value cut short by the
message's end, or an address of the wrong length or family, counts as absent), and the
line is ``record.csv_line``'s (SOFTWARE made safe and quoted by ``record.csv_field``;
every other cell is digits, hex or an address). A message longer than WIDTH bytes, with
more than MAX_ATTRIBUTES attributes before its end, or of a vendor's method, gets None:
the caller makes its line one at a time. ``tests/test_scan_triage.py`` and
``tests/test_fast_pcap.py`` hold both ways to the same lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stunscan import protocol as proto
from stunscan.codec import _ip_text
from stunscan.csvrow import (
    ROW_ATTRIBUTES,
    Line,
    ipv4_cells,
    ratio_text,
    software_text,
    type_text,
)
from stunscan.record import _utc_text

WIDTH = 512
"""Bytes of each message read here."""
PADDING = WIDTH
"""Readable bytes a buffer needs after its last message's start."""
MAX_ATTRIBUTES = 24
MAPPED, XOR, XOR_LEGACY, SOFTWARE, FINGERPRINT = range(len(ROW_ATTRIBUTES))
_SLOT = np.full(65536, -1, np.int8)
_SLOT[list(ROW_ATTRIBUTES)] = np.arange(len(ROW_ATTRIBUTES))
_INTEGRITY = np.zeros(65536, bool)
_INTEGRITY[list(proto.INTEGRITY_ATTRIBUTES)] = True
_COOKIE = np.frombuffer(proto.MAGIC_COOKIE_BYTES, np.uint8)
_TYPES = np.arange(65536)
_METHOD = proto.split_message_type(_TYPES)[0]  # type: ignore[arg-type]  # (bits only)
_KNOWN_TYPE = (_TYPES <= 0x3FFF) & np.isin(_METHOD, list(proto.METHODS))
"""``proto.known_method`` of every message type (its bit arithmetic on the whole range at
once: a call per type would add a tenth of a second to start-up)."""


def word16(
    data: np.ndarray, offset: int | np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """The big-endian 16-bit word at ``offset`` (one, or one per row) of each row of
    ``data`` (of ``rows`` only, if given)."""
    picked = np.arange(len(data)) if rows is None else rows
    return data[picked, offset].astype(np.int64) << 8 | data[picked, offset + 1]  # type: ignore[no-any-return]


def lines(
    buffer: np.ndarray,
    starts: Sequence[int] | np.ndarray,
    sizes: Sequence[int] | np.ndarray,
    times: Sequence[float],
    heads: Sequence[str],
    bases: Sequence[int] | np.ndarray,
    *,
    enriched: str,
    extent: bool,
) -> list[Line | None]:
    """The line of each message (``sizes[i]`` bytes at ``starts[i]`` of ``buffer``), or
    None where this does not decide (see the module's docstring).

    ``heads[i]``: the row's cells from ip to port ("192.0.2.1,udp,3478"); ``times[i]`` its
    capture time; ``bases[i]`` the size the amplification divides by; ``enriched`` the
    text between port and transaction ID (``EMPTY_COLUMNS`` or an enrichment's). The
    response size reported is the message's extent with ``extent`` (as
    ``csvrow.line``), else the whole payload (a scan's records)."""
    count = len(heads)
    out: list[Line | None] = [None] * count
    if not count:
        return out
    size = np.asarray(sizes, np.int64)
    at_start = np.asarray(starts, np.int64)
    fits = (size <= WIDTH) & (size >= proto.HEADER_SIZE) & (at_start + WIDTH <= len(buffer))
    picked = np.flatnonzero(fits)
    if not picked.size:
        return out
    data = sliding_window_view(buffer, WIDTH)[at_start[picked]]
    size = size[picked]
    msg_type = word16(data, 0)
    length = word16(data, 2)
    end = np.minimum(20 + length, size)
    reported = end if extent else size
    classic = ~(data[:, 4:8] == _COOKIE).all(axis=1)
    found, declared, walked, signed = _walk(data, end)
    # a value runs from its attribute's offset + 4 to its declared end, cut at the message's
    value_size = np.minimum(declared, end[:, None] - found - 4)
    whole = (found >= 0) & (value_size == declared)
    mapped = _addresses(data, found[:, MAPPED], declared[:, MAPPED], whole[:, MAPPED], None)
    key = data[:, 4:20]
    xor = _addresses(data, found[:, XOR], declared[:, XOR], whole[:, XOR], key)
    legacy = _addresses(
        data, found[:, XOR_LEGACY], declared[:, XOR_LEGACY], whole[:, XOR_LEGACY], key
    )
    xor = [x or y or ",," for x, y in zip(xor, legacy, strict=True)]
    mapped = [x or ",," for x in mapped]
    software_at = np.where(whole[:, SOFTWARE], found[:, SOFTWARE] + 4, -1).tolist()
    software_size = declared[:, SOFTWARE].tolist()
    has_fingerprint = whole[:, FINGERPRINT] & (declared[:, FINGERPRINT] == 4)
    fingerprint = _word(data, np.where(has_fingerprint, found[:, FINGERPRINT] + 4, 0))
    fingerprints = [
        f"0x{value:08x}" if present else ""
        for value, present in zip(fingerprint.tolist(), has_fingerprint.tolist(), strict=True)
    ]
    # every row's ID in hex at once: the 16 bytes after the length, of which a STUN
    # message's ID is the last 12 (the cookie first)
    idents = data[:, 4:20].tobytes().hex()
    ident_from = np.where(classic, 0, 8) + 32 * np.arange(picked.size)
    decided = walked & _KNOWN_TYPE[msg_type]  # (a vendor's method: csvrow says so)
    basis = np.asarray(bases, np.int64)[picked].tolist()
    wanted = np.flatnonzero(decided)
    second, stamp = -1, ""
    view = memoryview(buffer)  # type: ignore[arg-type]
    for row, index, kind, total, declared_length, is_classic, at, is_signed, start in zip(
        wanted.tolist(),
        picked[wanted].tolist(),
        msg_type[wanted].tolist(),
        reported[wanted].tolist(),
        length[wanted].tolist(),
        classic[wanted].tolist(),
        ident_from[wanted].tolist(),
        signed[wanted].tolist(),
        at_start[picked[wanted]].tolist(),
        strict=True,
    ):
        software, field = "", ""
        value_at = software_at[row]
        if value_at >= 0:
            value_at += start
            software, field = software_text(bytes(view[value_at : value_at + software_size[row]]))
        amplification, tail = ratio_text(total, basis[row])
        tid_text = idents[at : row * 32 + 32]
        cookie_text = tid_text[:8] if is_classic else "2112a442"
        when = times[index]
        if math.floor(when) != second:  # messages come in runs within one second
            second = math.floor(when)
            stamp = _utc_text(second)
        line = (
            f"{stamp},medium,{heads[index]}{enriched}{tid_text},{cookie_text},"
            f"{declared_length},{type_text(kind)},{mapped[row]},{xor[row]},{field},"
            f"{fingerprints[row]},{tail}"
        )
        out[index] = Line(line, amplification, software, is_signed)
    return out


def _word(data: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return word16(data, offset) << 16 | word16(data, offset + 2)


def _walk(
    data: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each message: the offset of the first of each wanted attribute (-1: none), its
    declared length, whether the walk reached the message's end here, and whether it met
    MESSAGE-INTEGRITY(-SHA256) (``roles.is_signed``)."""
    count = len(data)
    found = np.full((count, len(ROW_ATTRIBUTES)), -1, np.int64)
    declared = np.zeros((count, len(ROW_ATTRIBUTES)), np.int64)
    signed = np.zeros(count, bool)
    offset = np.full(count, 20, np.int64)
    active = np.flatnonzero(offset + 4 <= end)
    for _ in range(MAX_ATTRIBUTES):
        if not active.size:
            break
        at = offset[active]
        code = word16(data, at, active)
        size = word16(data, at + 2, active)
        signed[active[_INTEGRITY[code]]] = True
        slot = _SLOT[code].astype(np.int64)
        wanted = np.flatnonzero(slot >= 0)
        rows, slots = active[wanted], slot[wanted]
        first = found[rows, slots] < 0
        found[rows[first], slots[first]] = at[wanted][first]
        declared[rows[first], slots[first]] = size[wanted][first]
        offset[active] = np.minimum(at + 4 + ((size + 3) & ~3), end[active])
        active = active[offset[active] + 4 <= end[active]]
    walked = np.ones(count, bool)
    walked[active] = False
    return found, declared, walked, signed


def _addresses(
    data: np.ndarray,
    found: np.ndarray,
    declared: np.ndarray,
    whole: np.ndarray,
    key: np.ndarray | None,
) -> list[str | None]:
    """Each row's address attribute as its three cells ("01,192.0.2.1,3478"), or None if
    absent or malformed; un-XORed with ``key`` (cookie and ID) if given."""
    picked = np.arange(len(data))
    at = np.where(whole, found, 0)
    family = data[picked, at + 5].astype(np.int64)
    ok = whole & (((declared == 8) & (family == 1)) | ((declared == 20) & (family == 2)))
    port = word16(data, at + 6)
    columns = np.minimum(at[:, None] + 8 + np.arange(16), data.shape[1] - 1)  # (v4: 4 used)
    value = data[picked[:, None], columns]
    if key is not None:
        port ^= key[:, 0].astype(np.int64) << 8 | key[:, 1]
        value = value ^ key
    cells: list[str | None] = [None] * len(data)
    chosen = np.flatnonzero(ok)
    v4 = family[chosen] == 1
    number = value[chosen, :4].astype(np.int64) << np.array([24, 16, 8, 0])
    for row, is_v4, address, port_number in zip(
        chosen.tolist(), v4.tolist(), number.sum(axis=1).tolist(), port[chosen].tolist(),
        strict=True,
    ):  # fmt: skip
        if is_v4:
            cells[row] = ipv4_cells(address, port_number)
        else:
            cells[row] = f"02,{_ip_text(value[row].tobytes())},{port_number}"
    return cells
