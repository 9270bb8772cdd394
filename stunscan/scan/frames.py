"""The probe a scan sends, and whole Ethernet frames of it, built per target in microseconds.

The STUN request is built once with the Scapy layer (the teaching and building half of the
project), with a zero transaction ID. Per target only a few fields change: destination
address and port, source port, the transaction ID (and FINGERPRINT, which covers it).
So the frame is a template, and both checksums are the template's constant part plus the
changed bytes. Because 2^16 = 1 (mod 0xFFFF), the one's complement sum of 16-bit words is
congruent to the bytes read as one big integer, so a whole ID is added with one
``int.from_bytes`` instead of a loop over words (RFC 1071, RFC 1624).
"""

from __future__ import annotations

import socket
import struct
import zlib
from dataclasses import dataclass

from stunscan import protocol as proto
from stunscan.scan.route import Route

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


def _sum(data: bytes) -> int:
    """Congruent (mod 0xFFFF) to the one's complement sum of ``data``'s 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    return int.from_bytes(data, "big")


def _checksum(total: int) -> int:
    """The Internet checksum from a congruent total of non-zero data."""
    folded = total % 0xFFFF
    return 0xFFFF - folded if folded else 0


class FrameBuilder:
    """Ethernet + IPv4/IPv6 + UDP + STUN frames for one route and probe.

    Written for the sender's loop (about a microsecond a frame): the destination arrives as
    an integer, the checksums are integer arithmetic on precomputed constants, and the
    varying header fields go through one precompiled struct."""

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
        self.head = message[: template.id_offset]
        self.tail = message[template.id_offset + template.id_size :]
        self.fingerprint = template.fingerprint
        pseudo = _sum(source) + 17 + self.udp_length
        constant = message[:-4] + bytes(4) if self.fingerprint else message
        self.udp_constant = pseudo + self.udp_length + _sum(constant)  # ID and CRC added per frame
        if self.v6:
            self.prefix = ether + struct.pack("!IHBB", 6 << 28, self.udp_length, 17, TTL) + source
            self.fields = struct.Struct("!QQHHHH")  # destination (2 x 64 bits), UDP header
        else:
            total_length = IPV4_HEADER + self.udp_length
            self.prefix = ether + struct.pack("!BBH", 0x45, 0, total_length)
            self.ip_constant = 0x4500 + total_length + 0x4000 + (TTL << 8 | 17) + _sum(source)
            self.fields = struct.Struct(f"!HHBBH{len(source)}sIHHHH")
            self.source = source

    @property
    def frame_size(self) -> int:
        ip = IPV6_HEADER if self.v6 else IPV4_HEADER
        return ETHER_HEADER + ip + self.udp_length

    def frame(self, destination: int, port: int, source_port: int, transaction_id: bytes) -> bytes:
        """One whole frame to ``destination`` (the address as an integer)."""
        ident = int.from_bytes(transaction_id, "big")
        udp_sum = self.udp_constant + destination + port + source_port + ident
        stun = self.head + transaction_id + self.tail
        if self.fingerprint:
            covered = stun[:-8]  # up to FINGERPRINT's own header
            value = (zlib.crc32(covered) ^ proto.FINGERPRINT_XOR) & 0xFFFFFFFF
            stun = covered + stun[-8:-4] + value.to_bytes(4, "big")
            udp_sum += value
        udp_check = 0xFFFF - udp_sum % 0xFFFF  # a computed 0 goes out as 0xFFFF (RFC 768)
        if self.v6:
            return (
                self.prefix
                + self.fields.pack(
                    destination >> 64,
                    destination & 0xFFFFFFFFFFFFFFFF,
                    source_port,
                    port,
                    self.udp_length,
                    udp_check,
                )
                + stun
            )
        ip_id = ident & 0xFFFF
        ip_check = _checksum(self.ip_constant + ip_id + destination)
        fields = (ip_id, 0x4000, TTL, 17, ip_check, self.source, destination)
        udp = (source_port, port, self.udp_length, udp_check)
        return self.prefix + self.fields.pack(*fields, *udp) + stun
