"""Real messages, and the ways they get damaged: the input of the differential fuzzing
(tests/test_codec_mutations.py in the suite; tests/fuzz/campaign.py for a million inputs).

Seeds are STUN messages made by other people (RFC vectors, the damaged messages, every
STUN payload of the corpus captures and of pcaps/), and the mutations are what a hostile
or broken peer does to one: bit flips, byte overwrites, a message or attribute length
field edited (the likeliest way to make two decoders disagree on where things start),
truncation, bytes appended, an attribute duplicated or dropped, two messages spliced.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from pathlib import Path

from stunscan import codec
from stunscan import protocol as proto

from corpus import CORPUS, PROJECT, corpus_pcaps, rfc_vectors

INTERESTING_LENGTHS = (0, 1, 2, 3, 4, 5, 7, 8, 12, 16, 20, 0x7FFF, 0xFFFC, 0xFFFF)


def seed_messages() -> list[bytes]:
    """Every distinct STUN message of the corpus and of pcaps/ (UDP payloads and the
    messages of TCP segments), the RFC vectors and the damaged .hex messages."""
    found: list[bytes] = [bytes.fromhex(v["hex"]) for v in rfc_vectors()]
    damaged = CORPUS / "damaged"
    if damaged.is_dir():
        found += [bytes.fromhex(p.read_text().strip()) for p in sorted(damaged.glob("*.hex"))]
    for path in [*corpus_pcaps(), *sorted((PROJECT / "pcaps").glob("*.pcap*"))]:
        found += _payloads(path)
    unique = list(dict.fromkeys(m for m in found if proto.classify(m) is not None))
    return unique


def _payloads(path: Path) -> list[bytes]:
    from stunscan.capture.files import CaptureReader

    messages: list[bytes] = []
    try:
        for frame in CaptureReader(path):
            data = frame.data
            start = data.find(proto.MAGIC_COOKIE_BYTES)
            while start >= 4:  # the message begins 4 bytes before its cookie
                chunk = data[start - 4 :]
                decoded = codec.decode(chunk, datagram=False)
                if decoded is not None and decoded.is_stun and not decoded.malformed:
                    messages.append(chunk[: decoded.size])
                start = data.find(proto.MAGIC_COOKIE_BYTES, start + 1)
    except Exception:  # a capture the reader cannot finish still gave its messages
        pass
    return messages


def attribute_offsets(data: bytes) -> list[int]:
    """Where each attribute header starts, walking as the codec does."""
    offsets = []
    if len(data) < proto.HEADER_SIZE:
        return offsets
    end = min(proto.HEADER_SIZE + int.from_bytes(data[2:4], "big"), len(data))
    offset = proto.HEADER_SIZE
    while offset + 4 <= end and len(offsets) < 64:
        offsets.append(offset)
        declared = int.from_bytes(data[offset + 2 : offset + 4], "big")
        offset += 4 + proto.padded(declared)
    return offsets


def _flip_bit(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    if data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return data


def _set_byte(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    if data:
        data[rng.randrange(len(data))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return data


def _length_value(rng: random.Random, current: int) -> int:
    choice = rng.randrange(4)
    if choice == 0:
        return rng.choice(INTERESTING_LENGTHS)
    if choice == 1:
        return max(0, min(0xFFFF, current + rng.choice((-4, -3, -2, -1, 1, 2, 3, 4))))
    if choice == 2:
        return rng.randrange(0x10000)
    return max(0, min(0xFFFF, current + 4 * rng.randrange(-8, 9)))


def _message_length(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    if len(data) >= 4:
        current = int.from_bytes(data[2:4], "big")
        data[2:4] = struct.pack("!H", _length_value(rng, current))
    return data


def _attribute_length(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    offsets = attribute_offsets(bytes(data))
    if offsets:
        at = rng.choice(offsets) + 2
        current = int.from_bytes(data[at : at + 2], "big")
        data[at : at + 2] = struct.pack("!H", _length_value(rng, current))
    return data


def _inner_length(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    """A length inside a value (PASSWORD-ALGORITHM(S) parameters, an address family...)."""
    offsets = attribute_offsets(bytes(data))
    if offsets:
        at = rng.choice(offsets) + 4 + rng.choice((0, 1, 2, 3))
        if at + 2 <= len(data):
            current = int.from_bytes(data[at : at + 2], "big")
            data[at : at + 2] = struct.pack("!H", _length_value(rng, current))
    return data


def _truncate(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    return data[: rng.randrange(len(data) + 1)] if data else data


def _append(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    return data + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))


def _attribute_code(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    offsets = attribute_offsets(bytes(data))
    if offsets:
        at = rng.choice(offsets)
        code = rng.choice(sorted(proto.ATTRIBUTES)) if rng.randrange(4) else rng.randrange(65536)
        data[at : at + 2] = struct.pack("!H", code)
    return data


def _duplicate_or_drop(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    offsets = attribute_offsets(bytes(data))
    if not offsets:
        return data
    index = rng.randrange(len(offsets))
    start = offsets[index]
    end = offsets[index + 1] if index + 1 < len(offsets) else len(data)
    piece = data[start:end]
    data = data[:start] + data[end:] if rng.randrange(2) else data[:end] + piece + data[end:]
    if len(data) >= 4 and rng.randrange(2):  # often with the header length kept right
        data[2:4] = struct.pack("!H", min(max(len(data) - proto.HEADER_SIZE, 0), 0xFFFF))
    return data


def _splice(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    cut = rng.randrange(len(data) + 1)
    return data[:cut] + other[rng.randrange(len(other) + 1) :]


MUTATIONS: tuple[Callable[[bytearray, random.Random, bytes], bytearray], ...] = (
    _flip_bit,
    _set_byte,
    _message_length,
    _attribute_length,
    _inner_length,
    _truncate,
    _append,
    _attribute_code,
    _duplicate_or_drop,
    _splice,
)


def mutate(data: bytes, rng: random.Random, other: bytes = b"", rounds: int = 0) -> bytes:
    """``data`` damaged by 1-4 mutations (``rounds`` if given) chosen by ``rng``."""
    out = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        out = rng.choice(MUTATIONS)(out, rng, other)
    return bytes(out)
