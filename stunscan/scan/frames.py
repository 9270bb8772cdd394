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
    """The request with a zero ID, where its ID sits, and where FINGERPRINT's value sits."""

    name: str
    message: bytes
    id_offset: int
    id_size: int
    """12, 16 (classic) or 0: the shadowserver probe keeps its all-zero ID."""
    fingerprint_at: int | None = None


def build_template(name: str) -> ProbeTemplate:
    """The probe ``name`` (one of PROBES), built with the Scapy layer."""
    from stunscan import __version__
    from stunscan.layers import STUN, STUNClassic, make_attribute

    if name == "classic":
        message = bytes(STUNClassic(type="Binding Request", transaction_id=bytes(16)))
        return ProbeTemplate(name, message, 4, 16)
    attributes = []
    if name == "software":
        attributes.append(make_attribute("SOFTWARE", value=f"stunscan {__version__}"))
    if name == "fingerprint":
        attributes.append(make_attribute("FINGERPRINT"))
    if name not in PROBES:
        raise ValueError(f"unknown probe {name!r}")
    message = bytes(STUN(type="Binding Request", transaction_id=bytes(12), attributes=attributes))
    fingerprint_at = len(message) - 4 if name == "fingerprint" else None
    return ProbeTemplate(name, message, 8, 0 if name == "shadowserver" else 12, fingerprint_at)


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
    """Ethernet + IPv4/IPv6 + UDP + STUN frames for one route and probe."""

    def __init__(self, route: Route, template: ProbeTemplate) -> None:
        self.route = route
        self.template = template
        message = template.message
        self.payload_size = len(message)
        self.udp_length = UDP_HEADER + len(message)
        self.v6 = route.version == 6
        family = socket.AF_INET6 if self.v6 else socket.AF_INET
        self.source = socket.inet_pton(family, route.source)
        ethertype = b"\x86\xdd" if self.v6 else b"\x08\x00"
        self.ether = route.next_hop_mac + route.source_mac + ethertype
        self.head = message[: template.id_offset]
        self.tail = message[template.id_offset + template.id_size :]
        pseudo = _sum(self.source) + 17 + self.udp_length
        constant = message if template.fingerprint_at is None else message[:-4] + bytes(4)
        self.udp_constant = pseudo + self.udp_length + _sum(constant)  # ID and CRC added per frame
        if self.v6:
            self.ip_prefix = struct.pack("!IHBB", 6 << 28, self.udp_length, 17, TTL) + self.source
        else:
            total_length = IPV4_HEADER + self.udp_length
            self.ip_constant = 0x4500 + total_length + 0x4000 + (TTL << 8 | 17) + _sum(self.source)
            self.ip_total_length = total_length

    @property
    def frame_size(self) -> int:
        ip = IPV6_HEADER if self.v6 else IPV4_HEADER
        return ETHER_HEADER + ip + self.udp_length

    def payload(self, transaction_id: bytes) -> tuple[bytes, int]:
        """The STUN message for this ID, and its contribution to the UDP checksum beyond
        the template's."""
        template = self.template
        if template.fingerprint_at is None:
            return self.head + transaction_id + self.tail, _sum(transaction_id)
        covered = self.head + transaction_id + self.tail[:-8]  # up to the attribute's header
        value = (zlib.crc32(covered) ^ proto.FINGERPRINT_XOR) & 0xFFFFFFFF
        stun = covered + self.tail[-8:-4] + value.to_bytes(4, "big")
        return stun, _sum(transaction_id) + value

    def frame(
        self, destination: bytes, port: int, source_port: int, transaction_id: bytes
    ) -> bytes:
        """One whole frame; ``destination`` is the packed address."""
        stun, extra = self.payload(transaction_id)
        udp_sum = self.udp_constant + _sum(destination) + port + source_port + extra
        udp = struct.pack("!HHHH", source_port, port, self.udp_length, _checksum(udp_sum) or 0xFFFF)
        if self.v6:
            return self.ether + self.ip_prefix + destination + udp + stun
        ident = zlib.crc32(transaction_id + destination) & 0xFFFF
        ip_sum = _checksum(self.ip_constant + ident + _sum(destination))
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            self.ip_total_length,
            ident,
            0x4000,
            TTL,
            17,
            ip_sum,
            self.source,
            destination,
        )
        return self.ether + ip + udp + stun
