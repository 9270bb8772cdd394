"""The probe a scan sends, and whole Ethernet frames of it, built a block of targets at a time.

The STUN request is built once with the Scapy layer (the teaching and building half of the
project), with a zero transaction ID, and becomes a template frame. Per target only a few
fields change: destination address and port, source port, the transaction ID (and
FINGERPRINT, which covers it). The sender builds thousands of frames with a few numpy
operations over a ``(targets, frame size)`` array, so Python's per-frame cost disappears:
the checksums are sums of 16-bit big-endian words (RFC 1071) along each row, and
FINGERPRINT's CRC-32 comes from tables, because a CRC is affine in its input: for messages
of one length, ``crc(m xor d) = crc(m) xor crc(d) xor crc(0)``, so the CRC of the template
with ID bytes ``b_j`` is the template's CRC xor one table entry per (position, byte value).
"""

from __future__ import annotations

import socket
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from stunscan import protocol as proto
from stunscan.scan.route import Route
from stunscan.scan.targets import Targets

PROBES = {
    "binding": "a Binding request, 20 bytes, keyed transaction ID (the default)",
    "shadowserver": "the report's exact probe: 20 bytes, all-zero ID (validated by address)",
    "classic": "RFC 3489 Binding: no magic cookie, keyed 128-bit ID",
    "software": "a Binding carrying SOFTWARE (stunscan), keyed ID",
    "fingerprint": "a Binding carrying FINGERPRINT, keyed ID",
}
UDP_HEADER = 8
IPV4_HEADER = 20
IPV6_HEADER = 40
ETHER_HEADER = 14
TTL = 64
WIRE_OVERHEAD = 24
"""Preamble, start delimiter, FCS and inter-frame gap: what --bandwidth counts per frame."""


@dataclass(frozen=True, slots=True)
class ProbeTemplate:
    """The request with a zero ID, where its ID sits, and whether FINGERPRINT ends it."""

    name: str
    message: bytes
    id_offset: int
    id_size: int
    """12, 16 (classic) or 0: the shadowserver probe keeps its all-zero ID."""
    fingerprint: bool = False
    """Ends with FINGERPRINT, whose CRC covers the ID and so is computed per frame."""


def build_template(name: str) -> ProbeTemplate:
    """The probe ``name`` (one of PROBES), built with the Scapy layer."""
    from stunscan.layers import STUN, STUNClassic, make_attribute
    from stunscan.probe.variants import SOFTWARE

    if name == "classic":
        message = bytes(STUNClassic(type="Binding Request", transaction_id=bytes(16)))
        return ProbeTemplate(name, message, 4, 16)
    attributes = []
    if name == "software":
        attributes.append(make_attribute("SOFTWARE", value=SOFTWARE))
    if name == "fingerprint":
        attributes.append(make_attribute("FINGERPRINT"))
    if name not in PROBES:
        raise ValueError(f"unknown probe {name!r}")
    message = bytes(STUN(type="Binding Request", transaction_id=bytes(12), attributes=attributes))
    keyed = 0 if name == "shadowserver" else 12
    return ProbeTemplate(name, message, 8, keyed, fingerprint=name == "fingerprint")


def udp_checksums(words: np.ndarray, addresses: int, udp: int, udp_length: int) -> None:
    """Fill the UDP checksum of frames given as rows of big-endian 16-bit ``words``: the IP
    source and destination start at byte ``addresses``, right before the UDP header at byte
    ``udp``, and the segment runs to the row's end (RFC 768's pseudo-header is those
    addresses, protocol 17 and the length)."""
    covered = words[:, addresses // 2 :].sum(axis=1, dtype=np.uint64)
    # the one's complement sum is the total mod 0xFFFF; a computed 0 goes out as 0xFFFF
    words[:, udp // 2 + 3] = 0xFFFF - (covered + 17 + udp_length) % 0xFFFF


def ipv4_header_checksums(words: np.ndarray, udp: int) -> None:
    """Fill the IPv4 header checksum of such frames, the header running from the end of
    the Ethernet header to byte ``udp``."""
    header = words[:, ETHER_HEADER // 2 : udp // 2].sum(axis=1, dtype=np.uint64)
    folded = header % 0xFFFF
    words[:, ETHER_HEADER // 2 + 5] = np.where(folded == 0, 0, 0xFFFF - folded)


class FrameBuilder:
    """Ethernet + IPv4/IPv6 + UDP + STUN frames for one route and probe.

    The template frame has every constant field in place and zeros where targets differ.
    ``frames`` fills the varying columns for a block of targets and computes the checksums
    along the rows; ``frame`` is the same for one target."""

    def __init__(self, route: Route, template: ProbeTemplate) -> None:
        self.route = route
        self.template = template
        message = template.message
        self.udp_length = UDP_HEADER + len(message)
        self.v6 = route.version == 6
        family = socket.AF_INET6 if self.v6 else socket.AF_INET
        source = socket.inet_pton(family, route.source)
        ethertype = b"\x86\xdd" if self.v6 else b"\x08\x00"
        ether = route.next_hop_mac + route.source_mac + ethertype
        if self.v6:
            ip = struct.pack("!IHBB", 6 << 28, self.udp_length, 17, TTL) + source + bytes(16)
            self.destination = ETHER_HEADER + 24
        else:
            total_length = IPV4_HEADER + self.udp_length
            ip = struct.pack("!BBHHHBBH", 0x45, 0, total_length, 0, 0x4000, TTL, 17, 0)
            ip += source + bytes(4)
            self.destination = ETHER_HEADER + 16
        self.udp = ETHER_HEADER + len(ip)
        udp = struct.pack("!HHHH", 0, 0, self.udp_length, 0)
        self.template_frame = np.frombuffer(ether + ip + udp + message, dtype=np.uint8)
        self.pseudo_from = self.destination - len(source)
        """The UDP checksum covers the addresses (contiguous before UDP), then the segment."""
        self.id_at = self.udp + UDP_HEADER + template.id_offset
        if template.fingerprint:
            self._crc_tables(message[:-8], template.id_offset, template.id_size)

    def _crc_tables(self, covered: bytes, offset: int, size: int) -> None:
        """The CRC of the covered part with a zero ID, and what each ID byte changes."""
        self.crc_zero = zlib.crc32(covered)
        tables = np.empty((size, 256), dtype=np.uint32)
        buffer = bytearray(covered)
        for position in range(size):
            for value in range(256):
                buffer[offset + position] = value
                tables[position, value] = zlib.crc32(buffer) ^ self.crc_zero
            buffer[offset + position] = 0
        self.crc_tables = tables

    @property
    def frame_size(self) -> int:
        return len(self.template_frame)

    def frames(self, targets: Targets, source_ports: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Frames for a block of one family's targets, one row each: ``ids`` is
        ``(len(targets), id size)`` bytes (no columns for the all-zero ID)."""
        count = len(targets)
        out = np.tile(self.template_frame, (count, 1))
        words = out.view(">u2")
        if self.v6:
            address = np.empty((count, 2), dtype=">u8")
            address[:, 0], address[:, 1] = targets.high, targets.low
            out[:, self.destination : self.destination + 16] = address.view(np.uint8)
        else:
            address4 = targets.low.astype(">u4").reshape(count, 1)
            out[:, self.destination : self.destination + 4] = address4.view(np.uint8)
        udp = self.udp // 2
        words[:, udp] = source_ports
        words[:, udp + 1] = targets.port
        size = self.template.id_size
        if size:
            out[:, self.id_at : self.id_at + size] = ids
        if self.template.fingerprint:
            looked_up = self.crc_tables[np.arange(size), ids]
            crc = np.bitwise_xor.reduce(looked_up, axis=1) ^ (self.crc_zero ^ proto.FINGERPRINT_XOR)
            out[:, -4:] = crc.astype(">u4").reshape(count, 1).view(np.uint8)
        udp_checksums(words, self.pseudo_from, self.udp, self.udp_length)
        if not self.v6:
            if size:  # the IP ID: the transaction ID's last two bytes
                words[:, ETHER_HEADER // 2 + 2] = words[:, (self.id_at + size) // 2 - 1]
            ipv4_header_checksums(words, self.udp)
        return out

    def frame(self, destination: int, port: int, source_port: int, transaction_id: bytes) -> bytes:
        """One whole frame to ``destination`` (the address as an integer)."""
        targets = Targets.of(self.route.version, [destination], [port])
        ids = np.frombuffer(transaction_id, dtype=np.uint8).reshape(1, len(transaction_id))
        return self.frames(targets, np.array([source_port], dtype=np.uint16), ids)[0].tobytes()
