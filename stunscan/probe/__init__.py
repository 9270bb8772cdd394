"""``stunscan probe``: ask one host (or a few) every question chosen, and judge the answers.

Plain sockets, no root, no Scapy. For each address: the chosen variants in order over UDP
(and TCP if asked), then NAT behaviour discovery if asked; the largest amplification seen
over UDP is the host's worst case, and the verdict says in one line what an operator who
got a Shadowserver report needs to know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from stunscan import protocol as proto
from stunscan.enrich.columns import Enrichment
from stunscan.probe.exchange import Exchange, Timing, exchange_tcp, exchange_udp
from stunscan.probe.nat import NatReport, discover
from stunscan.probe.targets import Target, TargetError, Unresolved, resolve
from stunscan.probe.variants import NAMES, NAT, VARIANTS

ALLOCATE_SUCCESS = proto.message_type(0x003, proto.MessageClass.SUCCESS_RESPONSE)

__all__ = [
    "NAMES",
    "HostReport",
    "Probe",
    "Target",
    "TargetError",
    "Timing",
    "Unresolved",
    "VariantResult",
    "probe_target",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class Probe:
    """What to ask: variants by name, over which transports, on what schedule."""

    variants: tuple[str, ...] = ("binding",)
    udp: bool = True
    tcp: bool = False
    timing: Timing = field(default_factory=Timing)


@dataclass(slots=True)
class VariantResult:
    """One variant over one transport."""

    variant: str
    exchange: Exchange


@dataclass(slots=True)
class HostReport:
    """Everything asked of one address, and what it answered."""

    target: Target
    results: list[VariantResult] = field(default_factory=list)
    nat: NatReport | None = None
    enrichment: Enrichment | None = None
    """Where the address is, who routes it, its name (stunscan.enrich), once looked up."""

    def every_exchange(self) -> list[VariantResult]:
        """Every request sent: the variants', then NAT discovery's tests (each an answer
        that counts toward the verdict and the worst case like any other)."""
        nat = [] if self.nat is None else self.nat.tests
        return [*self.results, *(VariantResult(f"nat {label}", ex) for label, ex in nat)]

    @property
    def answered(self) -> bool:
        return any(r.exchange.answered for r in self.every_exchange())

    def worst(self) -> VariantResult | None:
        """The UDP answer with the largest amplification (what a reflector attack uses)."""
        udp = [
            r
            for r in self.every_exchange()
            if r.exchange.transport == "udp" and r.exchange.answered
        ]
        return max(udp, key=lambda r: r.exchange.amplification or 0.0, default=None)

    def verdict(self) -> str:
        """One plain line: is this an amplifier, how bad, is it TURN, does TCP answer."""
        worst = self.worst()
        parts: list[str] = []
        if worst is not None:
            factor = worst.exchange.amplification or 0.0
            sizes = f"{len(worst.exchange.request)} bytes draw {len(worst.exchange.answer)}"
            if factor > 1:
                parts.append(
                    f"AMPLIFIER over UDP: {factor:.2f}x at worst ({worst.variant}: {sizes})"
                )
            else:
                parts.append(f"answers over UDP without amplifying ({worst.variant}: {sizes})")
        elif any(r.exchange.transport == "udp" for r in self.every_exchange()):
            failures = {
                r.exchange.failure for r in self.every_exchange() if r.exchange.transport == "udp"
            }
            parts.append(f"no STUN answer over UDP ({', '.join(sorted(f for f in failures if f))})")
        if any(_is_open_relay(r.exchange) for r in self.results):
            parts.append("an OPEN TURN relay: Allocate succeeded without credentials")
        elif any(_is_turn(r.exchange) for r in self.results):
            parts.append("a TURN server (Allocate drew 401 with REALM and NONCE)")
        tcp = [r for r in self.results if r.exchange.transport == "tcp"]
        if tcp:
            parts.append(
                "answers over TCP"
                if any(r.exchange.answered for r in tcp)
                else "no STUN answer over TCP"
            )
        return "; ".join(parts) or "nothing asked"


def _is_turn(exchange: Exchange) -> bool:
    message = exchange.message
    error = message.get("ERROR-CODE") if message is not None else None
    if message is None or error is None or not isinstance(error.decoded, tuple):
        return False
    return (
        error.decoded[0] == 401
        and message.get("REALM") is not None
        and message.get("NONCE") is not None
    )


def _is_open_relay(exchange: Exchange) -> bool:
    message = exchange.message
    return message is not None and message.msg_type == ALLOCATE_SUCCESS


def probe_target(target: Target, probe: Probe) -> HostReport:
    """Ask ``target`` every variant of ``probe`` (UDP, then TCP, then NAT discovery, in
    that order in the report) all at once: each on its own socket, so that a host costs
    about one timeout however many variants go unanswered."""
    report = HostReport(target)
    asks: list[tuple[str, Callable[[], Exchange]]] = []
    for transport in _transports(probe):
        for name in _plain(probe.variants):
            variant = VARIANTS[name]
            if variant.udp_only and transport == "tcp":
                continue
            send = exchange_udp if transport == "udp" else exchange_tcp
            asks.append((name, partial(send, variant.build(), target.sockaddr, probe.timing)))
    nat = NAT in probe.variants and probe.udp
    with ThreadPoolExecutor(max_workers=len(asks) + nat or 1) as pool:
        running = [(name, pool.submit(ask)) for name, ask in asks]
        discovery = pool.submit(discover, target.sockaddr, probe.timing) if nat else None
        report.results = [VariantResult(name, future.result()) for name, future in running]
        if discovery is not None:
            report.nat = discovery.result()
    return report


def _transports(probe: Probe) -> Iterable[str]:
    if probe.udp:
        yield "udp"
    if probe.tcp:
        yield "tcp"


def _plain(names: Iterable[str]) -> list[str]:
    return [n for n in names if n != NAT]
