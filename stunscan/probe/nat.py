"""RFC 5780 NAT behaviour discovery: how the path to a server maps and filters.

All tests share one local UDP socket, as the RFC requires (the mapping under test is that
socket's). Test I asks the server's primary address; its OTHER-ADDRESS (or, from an RFC
3489 server, CHANGED-ADDRESS) names the alternate address and port the other tests use.

- Mapping (4.3): the XOR-MAPPED address seen from the alternate IP (test II) and from the
  alternate IP and port (test III), compared with test I's.
- Filtering (4.4): ask the primary to answer from the alternate IP and port (test II), or
  from the alternate port only (test III); which answers get through tells the filter.

A server with a single IP (OTHER-ADDRESS differs in port only) answers the port questions
only; the result says so rather than guessing.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from stunscan import protocol as proto
from stunscan.probe.exchange import Exchange, Timing, exchange_udp, family_of, udp_socket
from stunscan.probe.variants import CHANGE_IP, CHANGE_PORT, binding, change_request

ENDPOINT_INDEPENDENT = "endpoint-independent"
ADDRESS_DEPENDENT = "address-dependent"
ADDRESS_AND_PORT_DEPENDENT = "address and port-dependent"
NOT_PORT_DEPENDENT = "endpoint-independent or address-dependent (one server IP: alike)"
Endpoint = tuple[str, int]
Run = Callable[[str, bytes, Endpoint], Exchange]


@dataclass(slots=True)
class NatReport:
    """The tests run (each an Exchange) and what they show."""

    tests: list[tuple[str, Exchange]] = field(default_factory=list)
    mapped: proto.Address | None = None
    other: proto.Address | None = None
    nat: bool | None = None
    mapping: str | None = None
    filtering: str | None = None
    notes: list[str] = field(default_factory=list)


def _first_address(exchange: Exchange, *names: str) -> proto.Address | None:
    """The first of ``names`` the answer carries as a well-formed address."""
    message = exchange.message
    if message is None:
        return None
    for name in names:
        attr = message.get(name)
        if attr is not None and isinstance(attr.decoded, proto.Address):
            return attr.decoded
    return None


def mapped_address(exchange: Exchange) -> proto.Address | None:
    return _first_address(exchange, "XOR-MAPPED-ADDRESS", "MAPPED-ADDRESS")


def _other_address(exchange: Exchange) -> proto.Address | None:
    return _first_address(exchange, "OTHER-ADDRESS", "CHANGED-ADDRESS")


def discover(target: Endpoint, timing: Timing) -> NatReport:
    """Run RFC 5780's mapping and filtering tests against ``target`` over UDP."""
    report = NatReport()
    family = family_of(target[0])
    with udp_socket(family) as sock:
        sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))

        def run(label: str, request: bytes, where: Endpoint) -> Exchange:
            exchange = exchange_udp(request, where, timing, sock)
            report.tests.append((label, exchange))
            return exchange

        first = run("I: primary address", binding(), target)
        report.mapped = mapped_address(first)
        report.other = _other_address(first)
        if report.mapped is None:
            report.notes.append("test I drew no mapped address: nothing more can be told")
            return report
        own = first.local
        report.nat = (report.mapped.address, report.mapped.port) != own
        if report.other is None:
            report.notes.append(
                "no OTHER-ADDRESS (or CHANGED-ADDRESS): the server does not do RFC 5780"
            )
            return report
        other_ip, other_port = report.other.address, report.other.port
        one_ip = other_ip == target[0]
        if one_ip:
            report.notes.append("the server has one IP address: only ports could be varied")
        _mapping(report, run, target, other_ip, other_port, one_ip)
        _filtering(report, run, target, one_ip)
    return report


def _mapping(
    report: NatReport, run: Run, target: Endpoint, other_ip: str, other_port: int, one_ip: bool
) -> None:
    """RFC 5780 4.3."""
    if not one_ip:
        second = mapped_address(run("mapping II: alternate IP", binding(), (other_ip, target[1])))
        if second is None:
            report.notes.append("mapping test II drew no answer")
            return
        if second == report.mapped:
            report.mapping = ENDPOINT_INDEPENDENT
            return
    else:
        second = report.mapped
    third = mapped_address(
        run("mapping III: alternate IP and port", binding(), (other_ip, other_port))
    )
    if third is None:
        report.notes.append("mapping test III drew no answer")
    elif one_ip:
        report.mapping = (
            ENDPOINT_INDEPENDENT if third == report.mapped else ADDRESS_AND_PORT_DEPENDENT
        )
    else:
        report.mapping = ADDRESS_DEPENDENT if third == second else ADDRESS_AND_PORT_DEPENDENT


def _filtering(report: NatReport, run: Run, target: Endpoint, one_ip: bool) -> None:
    """RFC 5780 4.4."""
    if not one_ip:
        both = run(
            "filtering II: answer from alternate IP and port",
            change_request(CHANGE_IP | CHANGE_PORT),
            target,
        )
        if both.answered and both.moved:
            report.filtering = ENDPOINT_INDEPENDENT
            return
    port = run("filtering III: answer from alternate port", change_request(CHANGE_PORT), target)
    if port.answered and port.moved:
        report.filtering = NOT_PORT_DEPENDENT if one_ip else ADDRESS_DEPENDENT
    elif port.answered:
        report.notes.append("the server answered CHANGE-REQUEST from the same address")
    else:
        report.filtering = ADDRESS_AND_PORT_DEPENDENT
