"""Write a capture shaped like a scan's own pcap, fast (numpy), for the pcap benchmark.

A scan sends one 20-byte Binding request after another and answers come back from the
servers among the targets: coturn (80 bytes: XOR-MAPPED-ADDRESS, MAPPED-ADDRESS,
RESPONSE-ORIGIN, SOFTWARE, FINGERPRINT) and stund (88 bytes: MAPPED-ADDRESS,
SOURCE-ADDRESS, CHANGED-ADDRESS, XOR-MAPPED-ADDRESS, SOFTWARE). Two shapes:

- ``unpaired`` (issue 13's capture): in turn a probe to one address, a coturn-like answer
  and a stund-like answer from others, every packet with its own transaction ID. Nothing
  pairs: every request ages out of the analyser's table (by its size), every answer is
  unsolicited; each of the 65,536 addresses answers, so there are 65,536 servers.
- ``answered``: every probe is answered, by the coturn-like or stund-like server at the
  probed address, a few milliseconds later (so answers fall among later probes, often in
  another batch of the fast path); every 17th stund-like answer comes from port 3479 (the
  other address a CHANGE-REQUEST asks for). Every answer pairs.

Addresses come only from the benchmark range 198.18.0.0/15: targets 198.18.0.0/16, the
scanner 198.19.0.1. ``generate`` returns what the analyser must find.
"""

from __future__ import annotations

import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stunscan import protocol as proto

ADDRESSES = 65536
TARGETS = 0xC6120000  # 198.18.0.0/16
SCANNER = 0xC6130001  # 198.19.0.1
SCANNER_PORT = 61000
ETHER = bytes.fromhex("0200000000020200000000010800")
FRAME_HEADER = 42  # Ethernet, IPv4 without options, UDP
TID = slice(8, 20)
SHAPES = ("unpaired", "answered")
CHUNK = 32768


@dataclass(slots=True)
class Expected:
    """What ``stunscan pcap`` must report on the capture."""

    packets: int
    requests: int
    responses: int
    paired: int
    unsolicited: int
    servers: int
    moved: int


def _attribute(code: int, value: bytes) -> bytes:
    return struct.pack("!HH", code, len(value)) + value + bytes(-len(value) % 4)


def _address(address: int, port: int, xor: bool = False) -> bytes:
    if xor:
        port ^= proto.MAGIC_COOKIE >> 16
        address ^= proto.MAGIC_COOKIE
    return struct.pack("!BBHI", 0, 1, port, address)


def _message(msg_type: int, attributes: list[bytes], fingerprint: bool = False) -> bytes:
    body = b"".join(attributes)
    length = len(body) + (8 if fingerprint else 0)
    message = struct.pack("!HHI", msg_type, length, proto.MAGIC_COOKIE) + bytes(12) + body
    if fingerprint:
        message += _attribute(0x8028, struct.pack("!I", proto.fingerprint(message)))
    return message


PROBE = _message(0x0001, [])
COTURN = _message(
    0x0101,
    [
        _attribute(0x0020, _address(SCANNER, SCANNER_PORT, xor=True)),
        _attribute(0x0001, _address(SCANNER, SCANNER_PORT)),
        _attribute(0x802B, _address(TARGETS, 3478)),  # RESPONSE-ORIGIN: patched per server
        _attribute(0x8022, b"Coturn-4.6.1"),
    ],
    fingerprint=True,
)
STUND = _message(
    0x0101,
    [
        _attribute(0x0001, _address(SCANNER, SCANNER_PORT)),
        _attribute(0x0004, _address(TARGETS, 3478)),  # SOURCE-ADDRESS: patched per server
        _attribute(0x0005, _address(TARGETS + ADDRESSES, 3479)),  # CHANGED-ADDRESS
        _attribute(0x0020, _address(SCANNER, SCANNER_PORT, xor=True)),
        _attribute(0x8022, b"stund 0.97 ser"),
    ],
)
assert (len(PROBE), len(COTURN), len(STUND)) == (20, 80, 88)
ORIGIN = 20 + 12 + 12 + 8  # where RESPONSE-ORIGIN's address is in COTURN
SOURCE = 20 + 12 + 8  # where SOURCE-ADDRESS's address is in STUND


def _fingerprints(messages: np.ndarray, varying: list[int]) -> np.ndarray:
    """FINGERPRINT values of messages (rows) that differ from COTURN only at ``varying``
    bytes: CRC-32 is affine, so it is the template's CRC xor one table look-up per byte."""
    covered = len(COTURN) - 8
    base = zlib.crc32(COTURN[:covered])
    zero = zlib.crc32(bytes(covered))
    crc = np.full(len(messages), base ^ proto.FINGERPRINT_XOR, np.uint32)
    for position in varying:
        table = np.array(
            [zlib.crc32(bytes(position) + bytes([v]) + bytes(covered - position - 1)) ^ zero
             for v in range(256)],
            np.uint32,
        )  # fmt: skip
        crc ^= table[messages[:, position] ^ COTURN[position]]
    return crc


def _rows(template: bytes) -> bytes:
    """A record (pcap header's times left zero) of a UDP frame carrying ``template``."""
    size = FRAME_HEADER + len(template)
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, size - 14, 0, 0, 64, 17, 0, 0, 0)
    udp = struct.pack("!HHHH", 0, 0, 8 + len(template), 0)
    return struct.pack("<IIII", 0, 0, size, size) + ETHER + ip + udp + template


def generate(path: Path, packets: int, shape: str = "unpaired", seed: int = 1) -> Expected:
    """Write ``packets`` frames of ``shape`` (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    if shape == "unpaired":
        kinds = (np.arange(packets) % 3).astype(np.int8)  # probe, coturn, stund
        order = rng.permutation(ADDRESSES)
        probes = np.flatnonzero(kinds == 0)
        answers = np.flatnonzero(kinds != 0)
        server = np.empty(packets, np.int64)
        server[probes] = order[np.arange(probes.size) % ADDRESSES]
        server[answers] = order[(np.arange(answers.size) + ADDRESSES // 2) % ADDRESSES]
        port = np.full(packets, 3478, np.int64)
        tids = rng.integers(0, 256, (packets, 12), np.uint8)
        moved = 0
        requests, responses = probes.size, answers.size
        expected = Expected(
            packets, requests, responses, 0, responses, min(ADDRESSES, responses), 0
        )
    elif shape == "answered":
        probes_count = packets // 2
        target = rng.permutation(ADDRESSES)[np.arange(probes_count) % ADDRESSES]
        sent = np.arange(probes_count) * 10  # 100,000 probes a second, in microseconds
        back = sent + rng.integers(1000, 50000, probes_count)  # round trips of 1-50 ms
        when = np.concatenate([sent, back])
        ordering = np.argsort(when, kind="stable")
        is_answer = ordering >= probes_count
        probe_of = ordering % probes_count
        stund = target[probe_of] % 2 == 1
        kinds = np.where(is_answer, np.where(stund, 2, 1), 0).astype(np.int8)
        server = target[probe_of]
        moved_answer = is_answer & stund & (probe_of % 17 == 1)
        port = np.where(moved_answer, 3479, 3478)
        tids = rng.integers(0, 256, (probes_count, 12), np.uint8)[probe_of]
        moved = int(np.count_nonzero(moved_answer))
        answered_servers = {
            (int(s), int(p)) for s, p in zip(server[is_answer], port[is_answer], strict=True)
        }
        expected = Expected(
            packets, probes_count, probes_count, probes_count, 0, len(answered_servers), moved
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")
    times = 1_700_000_000_000_000 + np.arange(packets, dtype=np.int64) * 10
    with path.open("wb") as handle:
        handle.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for first in range(0, packets, CHUNK):
            part = slice(first, min(first + CHUNK, packets))
            handle.write(_chunk(kinds[part], times[part], server[part], port[part], tids[part]))
    return expected


def _chunk(
    kinds: np.ndarray, times: np.ndarray, server: np.ndarray, port: np.ndarray, tids: np.ndarray
) -> bytes:
    """The records of some packets, in order (the three kinds filled a kind at a time)."""
    templates = [_rows(t) for t in (PROBE, COTURN, STUND)]
    size = np.array([len(t) for t in templates])[kinds]
    starts = np.concatenate([[0], np.cumsum(size)[:-1]])
    out = np.zeros(int(size.sum()), np.uint8)
    address = (TARGETS + server).astype(">u4").view(np.uint8).reshape(-1, 4)
    ports = port.astype(">u2").view(np.uint8).reshape(-1, 2)
    scanner = np.frombuffer(struct.pack("!I", SCANNER), np.uint8)
    scanner_port = np.frombuffer(struct.pack("!H", SCANNER_PORT), np.uint8)
    seconds = (times // 1_000_000).astype("<u4").view(np.uint8).reshape(-1, 4)
    micros = (times % 1_000_000).astype("<u4").view(np.uint8).reshape(-1, 4)
    ip, stun = 16 + 14, 16 + FRAME_HEADER
    for kind, template in enumerate(templates):
        mine = np.flatnonzero(kinds == kind)
        if not mine.size:
            continue
        block = np.tile(np.frombuffer(template, np.uint8), (mine.size, 1))
        block[:, 0:4] = seconds[mine]
        block[:, 4:8] = micros[mine]
        source, destination = scanner, address[mine]
        source_port, destination_port = scanner_port, ports[mine]
        if kind:  # an answer: target -> scanner
            source, destination = destination, source
            source_port, destination_port = destination_port, source_port
        block[:, ip + 12 : ip + 16] = source
        block[:, ip + 16 : ip + 20] = destination
        block[:, ip + 20 : ip + 22] = source_port
        block[:, ip + 22 : ip + 24] = destination_port
        block[:, stun + TID.start : stun + TID.stop] = tids[mine]
        if kind == 1:
            block[:, stun + ORIGIN : stun + ORIGIN + 4] = address[mine]
            block[:, stun + ORIGIN - 2 : stun + ORIGIN] = ports[mine]
            varying = [*range(TID.start, TID.stop), *range(ORIGIN - 2, ORIGIN + 4)]
            crc = _fingerprints(block[:, stun:], varying)
            block[:, -4:] = crc.astype(">u4").view(np.uint8).reshape(-1, 4)
        elif kind == 2:
            block[:, stun + SOURCE : stun + SOURCE + 4] = address[mine]
            block[:, stun + SOURCE - 2 : stun + SOURCE] = ports[mine]
        out[starts[mine][:, None] + np.arange(block.shape[1])] = block
    return out.tobytes()


if __name__ == "__main__":
    print(generate(Path(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4]))
