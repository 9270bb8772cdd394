"""The sniffer: capture answers, validate them from the key alone, drop duplicates, stream rows.

It shares nothing with the sender but the scan's parameters (key, ports, target space):
an answer counts only if its transaction ID is the MAC of its own source address and port.
Anything else is counted and dropped: a STUN message whose ID does not validate (stray,
forged or spoofed), a datagram that is not STUN. An ID that validates for another of the
scanned ports is a server answering from a different port than it was asked on: kept and
flagged. ICMP destination unreachables are counted by kind.

The hot path is plain ``struct``-free slicing and the fast codec (no Scapy): the kernel
filter (``bpf.py``) already dropped everything not addressed to our source ports.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from stunscan import codec
from stunscan import protocol as proto
from stunscan.record import Record
from stunscan.scan.bpf import attach_filter
from stunscan.scan.targets import TargetSpace
from stunscan.scan.txid import TransactionKey

ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
"""linux/socket.h; Python's socket module does not name it."""
RECEIVE_BUFFER = 256 << 20
"""Asked of the kernel (SO_RCVBUFFORCE as root): bursts of answers wait here, not on the floor."""
MAX_PORTS_FOR_MOVED = 64
"""Past this many scanned ports, an ID is not re-checked against every other port."""
FLUSH_EVERY = 0.25
"""Rows reach their files at least this often under load, and whenever the wire is quiet."""
_COOKIE = proto.MAGIC_COOKIE_BYTES
_RESPONSE_CLASSES = (proto.MessageClass.SUCCESS_RESPONSE, proto.MessageClass.ERROR_RESPONSE)


@dataclass(slots=True)
class ReceiveStats:
    """What arrived, and what became of it."""

    received: int = 0
    valid: int = 0
    duplicates: int = 0
    moved: int = 0
    """Valid answers from another port than the one probed (kept, flagged)."""
    bad_id: int = 0
    """STUN from somewhere, but with an ID that is not ours for its source: stray or forged."""
    not_stun: int = 0
    """Not STUN, or a frame too short or malformed to read."""
    echoed: int = 0
    """A request or indication with our ID: an echo service reflecting the probe."""
    icmp_port_unreachable: int = 0
    icmp_other_unreachable: int = 0

    def as_list(self) -> list[int]:
        return [getattr(self, name) for name in COUNTERS]


COUNTERS = tuple(f.name for f in fields(ReceiveStats))
"""The counters in order, for the shared-memory mirror the progress display reads."""


def open_capture(interface: str, source_ports: tuple[int, int]) -> socket.socket:
    """An AF_PACKET socket on ``interface`` that sees only what the kernel filter passes.

    The socket is created with protocol 0 (it receives nothing), the filter attached, and
    only then bound to ETH_P_ALL: no unfiltered frame can slip in between."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    attach_filter(sock, *source_ports)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.bind((interface, ETH_P_ALL))
    return sock


@dataclass(slots=True)
class Validator:
    """Decides from an answer alone whether it answers one of our probes."""

    space: TargetSpace
    key: TransactionKey
    keyed: bool
    """False for the shadowserver probe: its ID is all zeros, so only the address is checked."""
    request_size: int
    clients: dict[int, str]
    """Our own address:port per family, for the rows' client field."""
    seen: set[tuple[bytes, int]] = field(default_factory=set)

    def judge(
        self, version: int, source: bytes, port: int, payload: bytes, stats: ReceiveStats
    ) -> Record | None:
        """A row for a first valid answer; None (and a count) for anything else."""
        key = self.key
        if len(payload) < proto.HEADER_SIZE:
            stats.not_stun += 1
            return None
        if key.size == 16:
            transaction_id = payload[4:20]
        elif payload[4:8] == _COOKIE:
            transaction_id = payload[8:20]
        else:
            stats.not_stun += 1
            return None
        probed = port
        probe: int | None = None
        if self.keyed:
            probe = key.probe_number(transaction_id, source, port)
            if probe is None and len(self.space.ports) <= MAX_PORTS_FOR_MOVED:
                for other in self.space.ports:
                    if other != port:
                        probe = key.probe_number(transaction_id, source, other)
                        if probe is not None:
                            probed = other
                            break
            if probe is None:
                stats.bad_id += 1
                return None
        else:
            if transaction_id != bytes(12) or not self.space.contains(
                version, int.from_bytes(source, "big")
            ):
                stats.bad_id += 1
                return None
            if port not in self.space.ports:
                probed = self.space.ports[0] if len(self.space.ports) == 1 else port
        message = codec.decode(payload)
        if message is None or not message.is_stun:
            stats.not_stun += 1
            return None
        if message.msg_class not in _RESPONSE_CLASSES:
            stats.echoed += 1
            return None
        if (source, probed) in self.seen:
            stats.duplicates += 1
            return None
        self.seen.add((source, probed))
        stats.valid += 1
        extra: dict[str, Any] = {
            "validation": "transaction-id" if self.keyed else "address-only",
        }
        if probe is not None:
            extra["probe"] = probe
        if probed != port:
            stats.moved += 1
            extra["answered_from_port"] = port
        ip = socket.inet_ntop(socket.AF_INET6 if version == 6 else socket.AF_INET, source)
        return Record(
            time.time(),
            ip,
            probed,
            "udp",
            message,
            len(payload),
            self.request_size,
            self.clients.get(version, ""),
            extra,
        )


def dissect(frame: memoryview, validator: Validator, stats: ReceiveStats) -> Record | None:
    """One captured Ethernet frame (the kernel filter passed it) to a row or a count.

    The filter guarantees the bytes it read (up to the UDP destination port); anything
    shorter past that point is counted as unreadable, never raised."""
    stats.received += 1
    try:
        ethertype = frame[12] << 8 | frame[13]
        if ethertype == 0x0800:
            start = 14 + (frame[14] & 0x0F) * 4
            if frame[23] == 1:
                _icmp(frame[start:], 3, stats)
                return None
            version, source = 4, bytes(frame[26:30])
        elif ethertype == 0x86DD:
            start = 54
            if frame[20] == 58:
                _icmp(frame[start:], 1, stats)
                return None
            version, source = 6, bytes(frame[22:38])
        else:
            stats.not_stun += 1
            return None
        port = frame[start] << 8 | frame[start + 1]
        length = frame[start + 4] << 8 | frame[start + 5]
    except IndexError:
        stats.not_stun += 1
        return None
    payload = bytes(frame[start + 8 : start + max(length, 8)])
    return validator.judge(version, source, port, payload, stats)


def _icmp(message: memoryview, unreachable_type: int, stats: ReceiveStats) -> None:
    if len(message) < 2 or message[0] != unreachable_type:
        stats.not_stun += 1
        return
    port_unreachable = 3 if unreachable_type == 3 else 4
    if message[1] == port_unreachable:
        stats.icmp_port_unreachable += 1
    else:
        stats.icmp_other_unreachable += 1


class Sniffer:
    """The receive loop: frames from the sockets, rows to ``emit``, counts to ``publish``."""

    def __init__(
        self,
        sockets: list[socket.socket],
        validator: Validator,
        emit: Callable[[Record], None],
        flush: Callable[[], None],
        publish: Callable[[ReceiveStats], None] = lambda stats: None,
        keep: Callable[[bytes], None] | None = None,
    ) -> None:
        self.sockets = sockets
        self.validator = validator
        self.emit = emit
        self.keep = keep
        self.flush = flush
        self.publish = publish
        self.stats = ReceiveStats()

    def run(self, should_stop: Callable[[], bool], poll: float = 0.05) -> ReceiveStats:
        """Receive until ``should_stop()``, then drain what the kernel still holds."""
        import selectors

        buffer = bytearray(1 << 18)
        view = memoryview(buffer)
        stats, validator, emit, keep = self.stats, self.validator, self.emit, self.keep
        selector = selectors.DefaultSelector()
        for sock in self.sockets:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        stopping = False
        flushed = time.monotonic()
        while True:
            ready = selector.select(poll)
            if not ready:
                self.flush()
                self.publish(stats)
                if stopping:
                    break
                stopping = should_stop()
                continue
            for selected, _ in ready:
                source: socket.socket = selected.fileobj  # type: ignore[assignment]
                for _ in range(4096):  # a burst per wake-up, then let the others speak
                    try:
                        size = source.recv_into(buffer)
                    except BlockingIOError:
                        break
                    if keep is not None:
                        keep(bytes(view[:size]))
                    record = dissect(view[:size], validator, stats)
                    if record is not None:
                        emit(record)
            self.publish(stats)
            now = time.monotonic()
            if now - flushed > FLUSH_EVERY:
                self.flush()
                flushed = now
            if not stopping and should_stop():
                stopping = True
        selector.close()
        self.flush()
        self.publish(stats)
        return stats
