"""Misbehaving STUN responders for the probe tests: small UDP servers on loopback, each
run by a thread for the length of a ``with`` block.

A handler gets each datagram and returns the datagrams to send back (none, one or several),
so one helper covers a silent host, a forged transaction ID, a late answer, an echo service
and a server with hostile SOFTWARE. Every responder is bounded: it stops with its block,
and it answers at most ``limit`` datagrams.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from stunscan import protocol as proto

Handler = Callable[[bytes, int], list[bytes]]
"""(datagram, how many came before it) -> answers."""


@dataclass
class Responder:
    host: str
    port: int
    received: list[bytes] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def target(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@contextlib.contextmanager
def responder(handler: Handler, host: str = "127.0.0.1", limit: int = 100) -> Iterator[Responder]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(0.05)
    state = Responder(host, sock.getsockname()[1])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set() and len(state.received) < limit:
            try:
                data, client = sock.recvfrom(65535)
            except TimeoutError:
                continue
            for answer in handler(data, len(state.received)):
                sock.sendto(answer, client)
            state.received.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


def binding_answer(
    request: bytes, *attributes: tuple[int, bytes], tid: bytes | None = None
) -> bytes:
    """A Binding success response to ``request`` (its ID unless ``tid`` forges another)."""
    ident = tid if tid is not None else request[8:20]
    mapped = proto.encode_address("127.0.0.1", 40000)
    return proto.encode_message(0x0101, ident, [(proto.MAPPED_ADDRESS, mapped), *attributes])


def silent(data: bytes, count: int) -> list[bytes]:
    return []


def forged(data: bytes, count: int) -> list[bytes]:
    """Answers, but always with another transaction ID."""
    return [binding_answer(data, tid=bytes(b ^ 0xFF for b in data[8:20]))]


def forged_then_real(data: bytes, count: int) -> list[bytes]:
    return [forged(data, count)[0], binding_answer(data)]


def echo(data: bytes, count: int) -> list[bytes]:
    """An echo service: our own request back, same ID, but not a response."""
    return [data]


def late(data: bytes, count: int) -> list[bytes]:
    """Ignores the first transmission, answers the retransmission."""
    return [binding_answer(data)] if count else []


HOSTILE_SOFTWARE = "evil\x1b[31m [bold red]PWNED[/bold red] \x07\u202e"


def hostile(data: bytes, count: int) -> list[bytes]:
    """SOFTWARE with an ANSI escape, rich markup, a bell and a bidi override."""
    return [binding_answer(data, (proto.SOFTWARE, HOSTILE_SOFTWARE.encode()))]
