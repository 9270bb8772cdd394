"""``stunscan verify``: ask every host a report lists whether it still answers.

Each host (ip, port, protocol) gets the report's own probe (the 20-byte zero-ID Binding,
variant ``shadowserver``) and a plain Binding, over the protocol the report lists, through
``stunscan.probe.exchange`` (RFC 8489 retransmission, ICMP errors heard through
IP_RECVERR, refused TCP connections): nothing here sends on its own. Hosts are checked side
by side (a bounded thread pool) and every packet waits for a token of one shared bucket, so
``--rate`` caps packets per second across all of them, retransmissions included.

A host is ``open`` when it answers as the report says, ``changed`` when it answers but its
amplification (two decimals, as the report writes it) or SOFTWARE differs, ``closed`` when
neither request drew an answer (no answer, ICMP unreachable, TCP refused).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stunscan.probe.exchange import Exchange, Timing, exchange_tcp, exchange_udp, udp_socket
from stunscan.probe.output import record_of
from stunscan.probe.variants import VARIANTS
from stunscan.record import COLUMNS, safe_cell
from stunscan.text import printable

ASKED = ("shadowserver", "binding")
"""The report's own probe first (its answer is the one compared), then a plain Binding."""
OPEN, CHANGED, CLOSED, UNCHECKED = "open", "changed", "closed", "not checked"
EXTRA_COLUMNS = ("status", "amplification_then", "checked_at")
TRANSPORTS = ("udp", "tcp")


@dataclass(frozen=True, slots=True)
class Listed:
    """A host as the report lists it (its latest row)."""

    ip: str
    port: int
    protocol: str
    amplification: float | None
    software: str | None


@dataclass(slots=True)
class Checked:
    """One listed host asked again."""

    listed: Listed
    status: str
    detail: str
    checked_at: float
    exchanges: list[tuple[str, Exchange]] = field(default_factory=list)

    @property
    def answer(self) -> Exchange | None:
        """The answer compared with the report: to its own probe if that drew one."""
        for _, exchange in self.exchanges:
            if exchange.answered:
                return exchange
        return None

    @property
    def amplification_now(self) -> float | None:
        answer = self.answer
        return None if answer is None else answer.amplification

    @property
    def software_now(self) -> str | None:
        answer = self.answer
        if answer is None:
            return None
        record = record_of(answer)
        return record.software() if record is not None else None

    def row(self) -> list[str]:
        """The report's columns as the host answers now (as listed, if it did not), then
        status, amplification then, checked at."""
        answer = self.answer
        record = record_of(answer) if answer is not None else None
        if record is not None:
            cells = list(record.row().values())
        else:
            listed = self.listed
            cells = ["" for _ in COLUMNS]
            cells[COLUMNS.index("ip")] = listed.ip
            cells[COLUMNS.index("port")] = str(listed.port)
            cells[COLUMNS.index("protocol")] = listed.protocol
            cells[COLUMNS.index("tag")] = "stun"
        then = self.listed.amplification
        return [
            *cells,
            self.status,
            "" if then is None else f"{then:.2f}",
            _utc(self.checked_at),
        ]

    def as_json(self) -> dict[str, Any]:
        listed = self.listed
        return {
            "ip": listed.ip,
            "port": listed.port,
            "protocol": listed.protocol,
            "status": self.status,
            "detail": self.detail,
            "amplification_then": listed.amplification,
            "amplification_now": _round(self.amplification_now),
            "software_then": listed.software,
            "software_now": self.software_now,
            "checked_at": _utc(self.checked_at),
            "asked": [
                {
                    "variant": variant,
                    "transport": exchange.transport,
                    "sent": exchange.sent,
                    "answered": exchange.answered,
                    "failure": exchange.failure,
                    "response_size": len(exchange.answer) if exchange.answered else None,
                }
                for variant, exchange in self.exchanges
            ],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _utc(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when))


class Pacer:
    """A token bucket shared by every thread: at most ``rate`` packets a second (burst 1),
    no limit when ``rate`` is 0."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()
        self.lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + self.interval
        if start > now:
            time.sleep(start - now)


class PacedSocket(socket.socket):
    """A UDP socket (the probe's own, ICMP errors included) whose every send takes a token."""

    pacer: Pacer

    def sendto(self, *args: Any) -> int:  # type: ignore[override]
        self.pacer.wait()
        return super().sendto(*args)


def _paced_udp_socket(family: int, pacer: Pacer) -> PacedSocket:
    base = udp_socket(family)
    paced = PacedSocket(base.family, base.type, base.proto, fileno=base.detach())
    paced.pacer = pacer
    return paced


def ask(listed: Listed, timing: Timing, pacer: Pacer) -> list[tuple[str, Exchange]]:
    """The report's probe, then a Binding, over the listed protocol; stops at the first
    failure that says nobody is there (ICMP unreachable, TCP refused)."""
    family = socket.AF_INET6 if ":" in listed.ip else socket.AF_INET
    target = (listed.ip, listed.port)
    done: list[tuple[str, Exchange]] = []
    for name in ASKED:
        request = VARIANTS[name].build()
        if listed.protocol == "udp":
            with _paced_udp_socket(family, pacer) as sock:
                exchange = exchange_udp(request, target, timing, sock)
        else:
            pacer.wait()
            exchange = exchange_tcp(request, target, timing)
        done.append((name, exchange))
        if exchange.failure and ("ICMP" in exchange.failure or "refused" in exchange.failure):
            break
    return done


def same_software(then: str | None, now: str | None) -> bool:
    """A report's SOFTWARE cell against the text a server sends now: the cell may be the
    text escaped (stunscan writes control characters as \\x00) or defused (a leading ')."""
    then = then or ""
    now = now or ""
    return then in (now, printable(now), safe_cell(now))


def judge(listed: Listed, exchanges: list[tuple[str, Exchange]]) -> Checked:
    checked = Checked(listed, CLOSED, "", time.time(), exchanges)
    answer = checked.answer
    if answer is None:
        failures = [e.failure for _, e in exchanges if e.failure]
        checked.detail = failures[0] if failures else "no answer"
        return checked
    now = answer.amplification or 0.0
    differences = []
    if listed.amplification is not None and abs(round(now, 2) - listed.amplification) > 0.005:
        differences.append(f"amplification {listed.amplification:.2f} -> {now:.2f}")
    if listed.software is not None and not same_software(listed.software, checked.software_now):
        differences.append("SOFTWARE differs")
    checked.status = CHANGED if differences else OPEN
    checked.detail = "; ".join(differences) or f"answers ({now:.2f}x)"
    return checked


def check(listed: Listed, timing: Timing, pacer: Pacer) -> Checked:
    if listed.protocol not in TRANSPORTS:
        return Checked(listed, UNCHECKED, f"protocol {listed.protocol!r} not asked", time.time())
    return judge(listed, ask(listed, timing, pacer))


def verify_all(
    hosts: Iterable[Listed],
    timing: Timing,
    rate: float,
    parallel: int,
    done: Callable[[Checked], None] | None = None,
) -> Iterator[Checked]:
    """Check every host, ``parallel`` at a time; results in the hosts' order."""
    pacer = Pacer(rate)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for result in pool.map(lambda host: check(host, timing, pacer), hosts):
            if done is not None:
                done(result)
            yield result
