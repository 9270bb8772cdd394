"""Which responders ``stunscan pcap`` reports: servers only by default, then the user's
filters (``--port``, ``--server CIDR``, ``--public-only``).

The report counts services answering an unauthenticated Binding. ICE peers answering
connectivity checks, TURN servers answering Allocate, and vendor protocols are found too:
they are reported with their role (``--include-peers``) but never counted as servers
unless asked. Decided on a sighting's bytes (no decode), so the fast CSV path filters too.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import Counter
from dataclasses import dataclass, field

from stunscan import roles
from stunscan.pcap.sighting import Sighting, ip_text
from stunscan.special import special_purpose

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SORT_KEYS = ("amplification",)


class FilterError(ValueError):
    """A filter the user wrote that cannot be read (one line, exit 2)."""


def parse_networks(texts: list[str]) -> tuple[Network, ...]:
    """``--server`` values: CIDRs or single addresses."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise FilterError(f"--server: not an address or CIDR: {text!r}") from None
    return tuple(networks)


@dataclass(slots=True)
class ReportFilter:
    """What to report, and what was left out (for the summary)."""

    include_peers: bool = False
    public_only: bool = False
    ports: frozenset[int] = frozenset()
    servers: tuple[Network, ...] = ()
    left_out: Counter[str] = field(default_factory=Counter)
    """Responders (first sightings) not reported, by reason: role or filter."""

    def keep(self, sighting: Sighting, all_messages: bool = False, role: str | None = None) -> bool:
        """Whether this sighting becomes a row. With ``all_messages`` every message of a
        reported server is a row, whatever its role; the role still decides the count.
        ``role``: the sighting's, when the caller has it already (it walks the bytes)."""
        if role is None:
            role = sighting.role
        if not all_messages and not roles.counted(role, self.include_peers):
            if sighting.first:
                self.left_out[role or "not a response"] += 1
            return False
        if not (self.ports or self.servers or self.public_only):
            return True
        address, port = sighting.server
        if self.ports and port not in self.ports:
            return self._drop(sighting, "other port")
        if self.servers or self.public_only:
            ip = ip_text(address)
            if self.servers and not _within(ip, self.servers):
                return self._drop(sighting, "outside --server")
            if self.public_only and special_purpose(ip) is not None:
                return self._drop(sighting, "special-purpose address")
        return True

    def counts(self, role: str | None) -> bool:
        """Whether a kept first sighting of this role enters the report's figures."""
        return roles.counted(role, self.include_peers)

    def _drop(self, sighting: Sighting, reason: str) -> bool:
        if sighting.first:
            self.left_out[reason] += 1
        return False

    def note(self) -> str:
        """The summary's line on what was left out, or ''."""
        if not self.left_out:
            return ""
        parts = [f"{reason} {count}" for reason, count in sorted(self.left_out.items())]
        by_role = any(reason in roles.ROLES for reason in self.left_out)
        hint = " (--include-peers to report ICE peers, TURN and the rest)" if by_role else ""
        return ", ".join(parts) + hint


@functools.lru_cache(maxsize=65536)
def _member(ip: str, networks: tuple[Network, ...]) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address.version == n.version and address in n for n in networks)


def _within(ip: str, networks: tuple[Network, ...]) -> bool:
    return _member(ip, networks)
