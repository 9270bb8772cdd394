"""One STUN transaction over plain sockets: send, retransmit, wait for *our* answer.

UDP follows RFC 8489 6.2.1: the request is sent again after RTO, 2 RTO, 4 RTO... up to Rc
transmissions, then the client waits Rm x RTO for the last; a ``timeout`` caps the whole
(the RFC's 39.5 s suits a call, not a survey). Over TCP (6.2.2) the request is sent once
and the client waits for as long as the timeout allows.

Only an answer that echoes the request's cookie and transaction ID and is a success or
error response counts. Anything else arriving on the socket (another ID, a copy of our
own request from an echo service, bytes that are not STUN) is counted as stray, never
taken. The UDP socket is not connected, so an answer from another address or port
(CHANGE-REQUEST) is seen; IP_RECVERR still brings back the ICMP errors an unconnected
socket would otherwise never hear of.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

from stunscan import codec
from stunscan import protocol as proto

_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_ICMP_TEXT = {
    (socket.AF_INET, 3, 0): "ICMP network unreachable",
    (socket.AF_INET, 3, 1): "ICMP host unreachable",
    (socket.AF_INET, 3, 3): "ICMP port unreachable",
    (socket.AF_INET, 3, 13): "ICMP administratively prohibited",
    (socket.AF_INET6, 1, 0): "ICMPv6 no route",
    (socket.AF_INET6, 1, 1): "ICMPv6 administratively prohibited",
    (socket.AF_INET6, 1, 3): "ICMPv6 address unreachable",
    (socket.AF_INET6, 1, 4): "ICMPv6 port unreachable",
}
RESPONSE_CLASSES = (proto.MessageClass.SUCCESS_RESPONSE, proto.MessageClass.ERROR_RESPONSE)


@dataclass(frozen=True, slots=True)
class Timing:
    """RFC 8489's retransmission parameters, and the cap on a whole transaction."""

    rto: float = 0.5
    """Initial retransmission timeout (RFC 8489: 500 ms is the default)."""
    transmissions: int = 7
    """Rc: how many times a request is sent at most."""
    last_wait: int = 16
    """Rm: after the last transmission, wait this many RTOs."""
    timeout: float = 3.0
    """Give up after this many seconds whatever the schedule says; 0 for the RFC's own end."""

    def send_times(self) -> list[float]:
        """Seconds after the start at which the request is (re)sent: 0, RTO, 3 RTO, 7 RTO..."""
        times = [self.rto * ((1 << n) - 1) for n in range(max(self.transmissions, 1))]
        return [t for t in times if t < self.deadline()]

    def deadline(self) -> float:
        """Seconds after the start at which the transaction fails."""
        natural = self.rto * ((1 << (max(self.transmissions, 1) - 1)) - 1)
        natural += self.last_wait * self.rto
        return min(natural, self.timeout) if self.timeout > 0 else natural


@dataclass(slots=True)
class Exchange:
    """What one request drew: the answer (decoded), from where, how fast, and what else."""

    transport: str
    target: tuple[str, int]
    request: bytes
    answer: bytes = b""
    message: codec.Message | None = None
    source: tuple[str, int] | None = None
    local: tuple[str, int] | None = None
    rtt: float | None = None
    answered_at: float = 0.0
    """Wall-clock time of the answer (the report's timestamp)."""
    sent: int = 0
    stray: Counter[str] = field(default_factory=Counter)
    failure: str | None = None
    started: float = 0.0
    """Monotonic time the transaction began (variants run side by side: see probe_target)."""
    finished: float = 0.0
    """Monotonic time it ended, answered or not."""

    @property
    def answered(self) -> bool:
        return self.message is not None

    @property
    def amplification(self) -> float | None:
        return len(self.answer) / len(self.request) if self.answered else None

    @property
    def moved(self) -> bool:
        """The answer came from another address or port than the one asked."""
        return self.source is not None and self.source != self.target


def is_our_answer(request: bytes, data: bytes) -> str | None:
    """None if ``data`` is the answer to ``request``, else why it is stray."""
    if len(data) < proto.HEADER_SIZE:
        return "too short for STUN"
    if proto.classify(data) not in (proto.STUN_MESSAGE, proto.CLASSIC_MESSAGE):
        return "not STUN"
    if data[4:20] != request[4:20]:
        return "another transaction ID"
    msg_class = proto.split_message_type((data[0] << 8) | data[1])[1]
    if msg_class not in RESPONSE_CLASSES:
        return "not a response (an echo of the request?)"
    return None


def _take(exchange: Exchange, data: bytes, source: tuple[str, int], started: float) -> bool:
    why = is_our_answer(exchange.request, data)
    if why is not None:
        exchange.stray[why] += 1
        return False
    exchange.answer = data
    exchange.message = codec.decode(data, datagram=exchange.transport == "udp")
    exchange.source = source
    exchange.rtt = time.monotonic() - started
    exchange.answered_at = time.time()
    return True


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_socket(family: int) -> socket.socket:
    """An unconnected UDP socket that still hears ICMP errors (IP_RECVERR)."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_RECVERR, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
    return sock


def _icmp_error(sock: socket.socket) -> str:
    """Read the queued ICMP error and say what it was."""
    try:
        _, ancillary, _, _ = sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
    except OSError:
        return "ICMP unreachable"
    for _, _, payload in ancillary:
        if len(payload) >= 8:
            _errno, _origin, icmp_type, icmp_code = struct.unpack_from("=IBBB", payload)
            text = _ICMP_TEXT.get((sock.family, icmp_type, icmp_code))
            return text or f"ICMP error (type {icmp_type}, code {icmp_code})"
    return "ICMP unreachable"


def exchange_udp(
    request: bytes,
    target: tuple[str, int],
    timing: Timing,
    sock: socket.socket | None = None,
) -> Exchange:
    """Send ``request`` to ``target`` over UDP on RFC 8489's schedule; wait for the answer.

    ``sock`` lets several transactions share one local port (NAT behaviour discovery).
    """
    exchange = Exchange("udp", target, request, started=time.monotonic())
    try:
        _udp(exchange, timing, sock)
    finally:
        exchange.finished = time.monotonic()
    return exchange


def _udp(exchange: Exchange, timing: Timing, sock: socket.socket | None) -> Exchange:
    request, target = exchange.request, exchange.target
    with contextlib.ExitStack() as stack:
        if sock is None:
            sock = stack.enter_context(udp_socket(family_of(target[0])))
        schedule = timing.send_times()
        deadline = timing.deadline()
        start = time.monotonic()
        last_sent = start
        while True:
            now = time.monotonic() - start
            while schedule and schedule[0] <= now:
                schedule.pop(0)
                try:
                    sock.sendto(request, target)
                except OSError as exc:
                    exchange.failure = _send_failure(exc, sock)
                    return exchange
                exchange.local = exchange.local or _local_endpoint(sock, target)
                exchange.sent += 1
                last_sent = time.monotonic()
            wake = min(schedule[0] if schedule else deadline, deadline)
            if now >= deadline:
                exchange.failure = "no answer"
                return exchange
            readable, _, _ = select.select([sock], [], [], max(wake - now, 0.0))
            if not readable:
                continue
            try:
                data, source = sock.recvfrom(65535)
            except ConnectionRefusedError:
                exchange.failure = _icmp_error(sock)
                return exchange
            except OSError as exc:
                unreachable = exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
                exchange.failure = _icmp_error(sock) if unreachable else f"receive failed: {exc}"
                return exchange
            if _take(exchange, data, source[:2], last_sent):
                return exchange


def source_address(target: tuple[str, int]) -> str:
    """The source address the kernel picks towards ``target`` (connect() sends nothing)."""
    with socket.socket(family_of(target[0]), socket.SOCK_DGRAM) as sock:
        sock.connect(target)
        return str(sock.getsockname()[0])


def _local_endpoint(sock: socket.socket, target: tuple[str, int]) -> tuple[str, int]:
    """Our address as the server sees it (absent a NAT): the wildcard made concrete."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", "::"):
        host = source_address(target)
    return host, port


def _send_failure(exc: OSError, sock: socket.socket) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return _icmp_error(sock)
    return f"cannot send: {exc.strerror or exc}"


def exchange_tcp(request: bytes, target: tuple[str, int], timing: Timing) -> Exchange:
    """Connect, send ``request`` once, read messages off the stream until ours arrives."""
    exchange = Exchange("tcp", target, request, started=time.monotonic())
    try:
        _tcp(exchange, timing)
    finally:
        exchange.finished = time.monotonic()
    return exchange


def _tcp(exchange: Exchange, timing: Timing) -> Exchange:
    request, target = exchange.request, exchange.target
    deadline = time.monotonic() + timing.deadline()
    with socket.socket(family_of(target[0]), socket.SOCK_STREAM) as sock:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            sock.connect(target)
        except ConnectionRefusedError:
            exchange.failure = "TCP connection refused"
            return exchange
        except TimeoutError:
            exchange.failure = "no answer (TCP connect timed out)"
            return exchange
        except OSError as exc:
            exchange.failure = f"cannot connect: {exc.strerror or exc}"
            return exchange
        exchange.local = sock.getsockname()[:2]
        started = time.monotonic()
        sock.sendall(request)
        exchange.sent = 1
        buffer = b""
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            try:
                chunk = sock.recv(65535)
            except TimeoutError:
                exchange.failure = "no answer"
                return exchange
            except OSError as exc:
                exchange.failure = f"connection failed: {exc.strerror or exc}"
                return exchange
            if not chunk:
                exchange.failure = "connection closed without an answer"
                return exchange
            buffer += chunk
            chunks, consumed = codec.stream_chunks(buffer)
            buffer = buffer[consumed:]
            for kind, message in chunks:
                if kind == proto.CHANNEL_DATA:
                    exchange.stray["ChannelData"] += 1
                elif _take(exchange, message, target, started):
                    return exchange
            if len(buffer) >= proto.HEADER_SIZE and proto.stream_frame(buffer, 0) is None:
                exchange.stray["not STUN"] += 1
                exchange.failure = "the server sent bytes that are not STUN"
                return exchange
            if len(buffer) > proto.HEADER_SIZE + proto.MAX_MESSAGE_LENGTH + 2:
                exchange.failure = "the server sent an oversized message"
                return exchange
