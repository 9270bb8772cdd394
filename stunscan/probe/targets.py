"""What ``stunscan probe`` is pointed at: HOST, HOST:PORT, IPv6, [IPv6]:PORT, resolved.

Names resolve through the system resolver (getaddrinfo), so /etc/hosts and the machine's
DNS settings apply, exactly as for any other client on it. A name may give several
addresses (A and AAAA): each is probed, since each is a server a reflector list would hold.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from stunscan.targetfile import TargetFileError, endpoint, read_targets
from stunscan.text import endpoint_text

STUN_PORT = 3478
MAX_ADDRESSES_PER_NAME = 8


class TargetError(ValueError):
    """A target that is not HOST, HOST:PORT, IPv6 or [IPv6]:PORT (a usage error)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One address to probe, and the words the user gave for it."""

    given: str
    address: str
    port: int

    @property
    def sockaddr(self) -> tuple[str, int]:
        return self.address, self.port

    def __str__(self) -> str:
        return endpoint_text(self.address, self.port)


@dataclass(frozen=True, slots=True)
class Unresolved:
    """A name that gave no address: probed as nothing, reported as a line."""

    given: str
    host: str
    reason: str


def split_host_port(text: str, default_port: int = STUN_PORT) -> tuple[str, int]:
    """'h', 'h:p', '[v6]', '[v6]:p' or a bare IPv6 address -> (host, port)."""
    text = text.strip()
    if not text:
        raise TargetError("an empty target")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise TargetError(f"{text!r}: expected [IPv6] or [IPv6]:PORT")
        _ipv6(host, text)
        return host, _port(rest[1:], text) if rest else default_port
    if text.count(":") > 1:  # a bare IPv6 address: no port can follow it unbracketed
        _ipv6(text, text)
        _refuse_ambiguous(text)
        return text, default_port
    host, colon, port = text.partition(":")
    if not host:
        raise TargetError(f"{text!r}: no host")
    return host, _port(port, text) if colon else default_port


def _ipv6(host: str, text: str) -> None:
    try:
        ipaddress.IPv6Address(host.split("%")[0])
    except ValueError:
        raise TargetError(f"{text!r}: {host!r} is not an IPv6 address") from None


def _refuse_ambiguous(text: str) -> None:
    """'::1:3478' is the address ::1:3478, but was surely meant as ::1 port 3478: an
    address with '::' whose last group is decimal and whose rest is an address itself
    reads both ways, so the user is asked to bracket it."""
    head, _, last = text.rpartition(":")
    if "::" not in text or "%" in text or not is_port_text(last):
        return
    try:
        ipaddress.IPv6Address(head)
    except ValueError:
        return
    raise TargetError(
        f"{text!r} is ambiguous: write [{head}]:{last} for port {last} of {head},"
        f" or [{text}] for the address {text}"
    )


def is_port_text(text: str) -> bool:
    """ASCII digits only (str.isdigit also takes '³' and full-width digits), at most 5."""
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


def _port(port: str, text: str) -> int:
    if not is_port_text(port) or not 0 < int(port) < 65536:
        raise TargetError(f"{text!r}: the port must be a number from 1 to 65535")
    return int(port)


def resolve(text: str, family: int = socket.AF_UNSPEC) -> list[Target] | Unresolved:
    """The addresses to probe for one target as given (``family`` limits them)."""
    host, port = split_host_port(text)
    try:
        literal = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        literal = None
    if literal is not None:
        wanted = {int(socket.AF_INET): 4, int(socket.AF_INET6): 6}.get(int(family))
        if wanted and literal.version != wanted:
            return Unresolved(text, host, f"is an IPv{literal.version} address")
        return [Target(text, host, port)]
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        return Unresolved(text, host, f"name does not resolve ({exc.strerror})")
    except UnicodeError:
        return Unresolved(text, host, "name does not resolve (not a valid host name)")
    targets: list[Target] = []
    for _, _, _, _, sockaddr in infos:
        target = Target(text, str(sockaddr[0]), port)
        if target not in targets:
            targets.append(target)
    return targets[:MAX_ADDRESSES_PER_NAME]


def file_targets(paths: list[Path]) -> list[str]:
    """``-I`` files (plain HOST[:PORT] lines or a report CSV: each row's own port) as
    targets written the way the command line takes them."""
    try:
        return [endpoint(target) for path in paths for target in read_targets(path)]
    except TargetFileError as exc:
        raise TargetError(str(exc)) from None
