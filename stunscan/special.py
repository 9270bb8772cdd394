"""Special-purpose address ranges (RFC 6890 and the IANA registries that continue it).

Shared by ``stunscan scan`` (never probed unless ``--allow`` lifts them) and ``stunscan
pcap`` (``--public-only`` leaves their servers out of the report: an address in one of
these ranges is no Internet-accessible service).
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import socket

SPECIAL_PURPOSE: tuple[tuple[str, str], ...] = (
    # IPv4: RFC 6890 and the IANA special-purpose registry that continues it
    ("0.0.0.0/8", "this network (RFC 791)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared address space (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link local (RFC 3927)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
    ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "AMT (RFC 7450)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("192.175.48.0/24", "direct delegation AS112 (RFC 7534)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
    # IPv6
    ("::/127", "unspecified and loopback (RFC 4291)"),
    ("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2002::/16", "6to4 (RFC 3056)"),
    ("2620:4f:8000::/48", "direct delegation AS112 (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "segment routing SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link local (RFC 4291)"),
    ("ff00::/8", "multicast (RFC 4291)"),
)
"""Never scanned unless ``--allow`` names them, never reported with ``--public-only``:
nobody answers STUN for the public there, and probing them is at best noise, at worst
someone's private network."""

_NETWORKS = tuple(ipaddress.ip_network(cidr) for cidr, _ in SPECIAL_PURPOSE)


@functools.lru_cache(maxsize=65536)
def special_purpose(address: str) -> str | None:
    """What the special-purpose range holding ``address`` is for, or None if it is public."""
    ip = ipaddress.ip_address(address)
    for network, (_, purpose) in zip(_NETWORKS, SPECIAL_PURPOSE, strict=True):
        if ip.version == network.version and ip in network:
            return purpose
    return None


def _spans(version: int) -> tuple[list[int], list[int]]:
    """The family's ranges as sorted, merged (first, last) integer spans."""
    firsts: list[int] = []
    lasts: list[int] = []
    for network in sorted(n for n in _NETWORKS if n.version == version):
        first, last = int(network.network_address), int(network.broadcast_address)
        if lasts and first <= lasts[-1] + 1:
            lasts[-1] = max(lasts[-1], last)
        else:
            firsts.append(first)
            lasts.append(last)
    return firsts, lasts


_SPANS = {4: _spans(4), 6: _spans(6)}


def is_special(ip: str) -> bool:
    """True for a special-purpose address (or text that is no address at all). A bisect
    over integer ranges: several times faster than :func:`special_purpose` or
    ``ipaddress``'s ``is_global``, which enrichment would otherwise pay for every new
    server."""
    try:
        if ":" in ip:
            number, version = int.from_bytes(socket.inet_pton(socket.AF_INET6, ip), "big"), 6
        else:
            number, version = int.from_bytes(socket.inet_aton(ip), "big"), 4
    except OSError:
        return True
    firsts, lasts = _SPANS[version]
    at = bisect.bisect_right(firsts, number) - 1
    return at >= 0 and number <= lasts[at]
