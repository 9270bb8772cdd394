"""The sniffer: capture answers, validate them from the key alone, drop duplicates, stream rows.

It shares nothing with the sender but the scan's parameters (key, ports, target space):
an answer counts only if its transaction ID is the MAC of its own source address and port.
Anything else is counted and dropped: a STUN message whose ID does not validate (stray,
forged or spoofed), a datagram that is not STUN. An ID that validates for another of the
scanned ports is a server answering from a different port than it was asked on: kept and
flagged. ICMP destination unreachables are counted by kind.

Frames arrive in a receive ring (``rxring.py``) that the kernel filter (``bpf.py``) feeds
with answers to our source ports only. Each batch of ready frames is judged at once with
numpy (``triage.py``); the odd frame the batch code is not sure of goes through
:func:`dissect`, the same rules one frame at a time, in capture order. Valid answers stay
bytes (``answer.py``) until they become rows. Frames the kernel had to drop because the
ring was full are counted: they are the only answers a scan can lose, and it says so.
No Scapy on this path.
"""

from __future__ import annotations

import mmap
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import numpy as np

from stunscan import codec
from stunscan import protocol as proto
from stunscan.scan import rows
from stunscan.scan.answer import Answer, Asked
from stunscan.scan.bpf import attach_filter
from stunscan.scan.rxring import Frames, RxRing, slot_size
from stunscan.scan.targets import TargetSpace
from stunscan.scan.triage import (
    ANSWER,
    BAD_ID,
    ECHOED,
    GENERIC,
    NOT_STUN,
    SOURCE4,
    SOURCE6,
    Triage,
)
from stunscan.scan.txid import TransactionKey

ETH_P_ALL = 0x0003
MAX_PORTS_FOR_MOVED = 64
"""Past this many scanned ports, an ID is not re-checked against every other port."""
FLUSH_EVERY = 0.25
"""Rows reach their files at least this often under load, and whenever the wire is quiet."""
SMALL_BATCH, PAUSE = 64, 0.0005
"""After a batch of fewer than SMALL_BATCH frames, wait PAUSE seconds for more: judging a
batch has a fixed cost of some hundred microseconds, so taking frames one by one as they
trickle in would keep a core busy that the sender needs. Under load batches are large and
the sniffer never waits; the delay it adds is at most half a millisecond."""
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
    kernel_dropped: int = 0
    """Frames the filter passed but the kernel dropped, the receive ring being full: answers
    lost before the sniffer could read them (not among ``received``)."""

    def as_list(self) -> list[int]:
        return [getattr(self, name) for name in COUNTERS]


COUNTERS = tuple(f.name for f in fields(ReceiveStats))
"""The counters in order, for the shared-memory mirror the progress display reads."""


@dataclass(slots=True)
class Capture:
    """One interface's capture socket and the receive ring the kernel fills."""

    sock: socket.socket
    ring: RxRing

    def close(self) -> None:
        self.ring.close()
        self.sock.close()


def open_capture(interface: str, source_ports: tuple[int, int]) -> Capture:
    """An AF_PACKET socket on ``interface`` that sees only what the kernel filter passes.

    The socket is created with protocol 0 (it receives nothing), the filter attached and
    the receive ring set up, and only then bound to ETH_P_ALL: no unfiltered frame can slip
    in between. Raises OSError if the kernel refuses the ring (memory)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        attach_filter(sock, *source_ports)
        ring = RxRing(sock, slot_size(interface))
        sock.bind((interface, ETH_P_ALL))
    except OSError:
        sock.close()
        raise
    return Capture(sock, ring)


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
    seen: set[int] = field(default_factory=set)
    """The servers that answered, as :func:`server_number`."""
    asked: Asked = field(init=False)

    def __post_init__(self) -> None:
        self.asked = Asked(self.request_size, self.clients, self.keyed)

    def judge(
        self,
        version: int,
        source: bytes,
        port: int,
        payload: bytes,
        stats: ReceiveStats,
        when: float | None = None,
    ) -> Answer | None:
        """The answer, if it is a first valid one; None (and a count) for anything else."""
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
        return self.accept(version, source, port, probed, probe, payload, stats, when)

    def accept(
        self,
        version: int,
        source: bytes,
        port: int,
        probed: int,
        probe: int | None,
        payload: bytes,
        stats: ReceiveStats,
        when: float | None = None,
        server: int | None = None,
    ) -> Answer | None:
        """A response that validated: the answer, unless its server (``server_number``,
        computed here unless given) already answered."""
        if server is None:
            server = server_number(source, probed)
        if server in self.seen:
            stats.duplicates += 1
            return None
        self.seen.add(server)
        stats.valid += 1
        if probed != port:
            stats.moved += 1
        return Answer(
            time.time() if when is None else when,
            version,
            source,
            probed,
            port,
            payload,
            probe,
            self.asked,
        )

    def triage(self) -> Triage:
        """The same judgement for whole batches."""
        space = self.space
        other_ports = len(space.ports) <= MAX_PORTS_FOR_MOVED
        return Triage(self.key, self.keyed, space.ports, other_ports, space.contains)


def server_number(source: bytes, port: int) -> int:
    """A server (packed address, port probed) as one integer, the family in bit 144: a set
    of half a million of these is smaller and faster than one of tuples."""
    return int.from_bytes(source, "big") << 16 | port | (len(source) == 16) << 144


def dissect(
    frame: memoryview, validator: Validator, stats: ReceiveStats, when: float | None = None
) -> Answer | None:
    """One captured Ethernet frame (the kernel filter passed it) to an answer or a count.

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
    return validator.judge(version, source, port, payload, stats, when)


def _icmp(message: memoryview, unreachable_type: int, stats: ReceiveStats) -> None:
    if len(message) < 2 or message[0] != unreachable_type:
        stats.not_stun += 1
        return
    port_unreachable = 3 if unreachable_type == 3 else 4
    if message[1] == port_unreachable:
        stats.icmp_port_unreachable += 1
    else:
        stats.icmp_other_unreachable += 1


def judge_batch(
    memory: bytes | mmap.mmap,
    buffer: np.ndarray,
    frames: Frames,
    validator: Validator,
    triage: Triage,
    stats: ReceiveStats,
) -> list[Answer]:
    """The first valid answers among a batch of frames, in capture order, every frame
    counted once: what :func:`dissect` gives frame by frame, decided for the batch. The
    answers the batch code judged get their report rows made here too (``rows.py``)."""
    decisions = triage.decide(buffer, frames.starts, frames.captured)
    verdict = decisions.verdict
    counts = np.bincount(verdict, minlength=ANSWER + 1).tolist()
    stats.received += len(frames) - counts[GENERIC]
    stats.not_stun += counts[NOT_STUN]
    stats.bad_id += counts[BAD_ID]
    stats.echoed += counts[ECHOED]
    answers: list[Answer] = []
    picked = np.flatnonzero((verdict == GENERIC) | (verdict == ANSWER))
    if not picked.size:
        return answers
    starts = frames.starts[picked].tolist()
    times = frames.times[picked].tolist()
    keyed = validator.keyed
    made: list[Answer] = []
    made_at: list[int] = []
    for index, start, when, kind, offset, size, version, sport, probed, probe, server in zip(
        picked.tolist(),
        starts,
        times,
        verdict[picked].tolist(),
        decisions.payload[picked].tolist(),
        decisions.size[picked].tolist(),
        decisions.version[picked].tolist(),
        decisions.sport[picked].tolist(),
        decisions.probed[picked].tolist(),
        decisions.probe[picked].tolist(),
        decisions.server4[picked].tolist(),
        strict=True,
    ):
        if kind == GENERIC:
            frame = memoryview(memory[start : start + int(frames.captured[index])])
            answer = dissect(frame, validator, stats, when)
        else:
            payload = memory[start + offset : start + offset + size]
            where = SOURCE4 if version == 4 else SOURCE6
            source = memory[start + where.start : start + where.stop]
            answer = validator.accept(
                version, source, sport, probed, probe if keyed else None, payload, stats, when,
                server if version == 4 else None,
            )  # fmt: skip
            if answer is not None:
                made.append(answer)
                made_at.append(start + offset)
        if answer is not None:
            answers.append(answer)
    rows.fill(buffer, made, made_at)
    return answers


class Sniffer:
    """The receive loop: frames from the rings, each batch's answers to ``emit``, counts to
    ``publish``."""

    def __init__(
        self,
        captures: list[Capture],
        validator: Validator,
        emit: Callable[[list[Answer]], None],
        flush: Callable[[], None],
        publish: Callable[[ReceiveStats], None] = lambda stats: None,
        keep: Callable[[bytes, float], None] | None = None,
    ) -> None:
        self.captures = captures
        self.validator = validator
        self.triage = validator.triage()
        self.emit = emit
        self.keep = keep
        self.flush = flush
        self.publish = publish
        self.stats = ReceiveStats()

    def run(self, should_stop: Callable[[], bool], poll: float = 0.05) -> ReceiveStats:
        """Receive until ``should_stop()``, then drain what the kernel still holds (until
        the wire has been quiet for ``poll`` seconds)."""
        poller = select.poll()
        for capture in self.captures:
            poller.register(capture.sock.fileno(), select.POLLIN | select.POLLERR)
        stats = self.stats
        stopping = False
        flushed = time.monotonic()
        while True:
            busy = False
            largest = 0
            for capture in self.captures:
                frames = capture.ring.take()
                if len(frames):
                    busy = True
                    largest = max(largest, len(frames))
                    self._batch(capture, frames)
                    capture.ring.release(frames)
            self.publish(stats)
            if busy:
                if largest < SMALL_BATCH:
                    time.sleep(PAUSE)
                now = time.monotonic()
                if now - flushed > FLUSH_EVERY:
                    self._settle()
                    flushed = now
                if not stopping and should_stop():
                    stopping = True
                continue
            poller.poll(int(poll * 1000))
            if any(capture.ring.ready() for capture in self.captures):
                continue
            self._settle()
            flushed = time.monotonic()
            if stopping:
                break
            stopping = should_stop()
        self._settle()
        return stats

    def _batch(self, capture: Capture, frames: Frames) -> None:
        ring = capture.ring
        answers = judge_batch(ring.ring, ring.flat, frames, self.validator, self.triage, self.stats)
        if answers:
            self.emit(answers)
        if self.keep is not None:
            for index, when in enumerate(frames.times.tolist()):
                self.keep(ring.frame(frames, index), when)

    def _settle(self) -> None:
        """Rows to their files, the kernel's drop count read, the counters published."""
        for capture in self.captures:
            self.stats.kernel_dropped += capture.ring.statistics()[1]
        self.flush()
        self.publish(self.stats)
