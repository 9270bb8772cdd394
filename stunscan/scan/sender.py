"""The sender: walk the target order, one raw frame per probe, at the asked rate.

It knows the key, the order and the routes; it keeps nothing about what it sent (the
sniffer validates answers from the key alone). Frames go out through AF_PACKET sockets,
one per interface, bypassing the kernel's routing per packet as zmap does. Pacing is a
schedule, not a sleep per packet: packet ``n`` is due at ``start + n / rate``; the loop
sleeps only when it is more than a millisecond ahead, so the rate holds on average to
well within 5% whatever the granularity of ``sleep`` (tests/test_scan_lab.py measures it
from a capture of what was sent).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stunscan.scan.frames import FrameBuilder
from stunscan.scan.ring import TxRing
from stunscan.scan.targets import TargetSpace
from stunscan.scan.txid import TransactionKey

SLEEP_AHEAD = 0.001
SEND_RETRIES = 100
"""A full transmit queue (ENOBUFS) is waited out this many times, 100 µs each, per frame."""


@dataclass(slots=True)
class SendStats:
    """What the sender did; ``sent`` is read live by the progress display."""

    targets: int = 0
    sent: int = 0
    failed: int = 0
    started: float = 0.0
    finished: float = 0.0
    interrupted: bool = False

    @classmethod
    def combined(cls, parts: list[SendStats]) -> SendStats:
        """Several senders' figures as one scan's."""
        return cls(
            sum(p.targets for p in parts),
            sum(p.sent for p in parts),
            sum(p.failed for p in parts),
            min(p.started for p in parts),
            max(p.finished for p in parts),
            any(p.interrupted for p in parts),
        )

    @property
    def rate(self) -> float:
        elapsed = self.finished - self.started
        return self.sent / elapsed if elapsed > 0 and self.sent > 1 else 0.0


def open_send_socket(interface: str) -> socket.socket:
    """An AF_PACKET socket bound to ``interface`` that receives nothing (protocol 0)."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind((interface, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return sock


class Sender:
    """Frames for every index of ``order``, through the builder and socket of its family."""

    def __init__(
        self,
        space: TargetSpace,
        key: TransactionKey,
        builders: dict[int, FrameBuilder],
        sockets: dict[int, socket.socket],
        *,
        probes: int = 1,
        rate: float = 0.0,
        source_ports: tuple[int, int] = (40000, 40000),
        max_targets: int | None = None,
        progress: Any = None,
        slot: int = 0,
    ) -> None:
        self.space = space
        self.key = key
        self.builders = builders
        self.sockets = sockets
        self.probes = probes
        self.rate = rate
        self.source_ports = source_ports
        self.max_targets = max_targets
        self.progress = progress
        """Shared memory (two counters per sender: sent, targets) for the progress display."""
        self.slot = slot
        self.stats = SendStats()

    def run(
        self,
        order: Iterable[int],
        should_stop: Callable[[], bool] = lambda: False,
        start_at: float | None = None,
    ) -> SendStats:
        """Send until the order or ``max_targets`` is exhausted, or ``should_stop()``.
        ``start_at`` (perf_counter, one clock for every process) lines several senders'
        schedules up, so that together they keep the rate from the first packet."""
        stats = self.stats
        space, key, probes = self.space, self.key, self.probes
        low, high = self.source_ports
        span = high - low + 1
        keyed = next(iter(self.builders.values())).template.id_size
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        batch = max(1, min(256, int(self.rate / 2000))) if interval else 256
        outputs = {version: _output(sock, batch) for version, sock in self.sockets.items()}
        if start_at is not None and start_at > time.perf_counter():
            time.sleep(start_at - time.perf_counter())
        # the schedule starts now that the rings are set up, or packets would burst to catch up
        stats.started = start_at if start_at is not None else time.perf_counter()
        frames = {version: builder.frame for version, builder in self.builders.items()}
        mac = key.transaction_id
        single = space.single_span()
        start = stats.started
        limit = self.max_targets if self.max_targets is not None else -1
        sent = 0
        try:
            for index in order:
                if stats.targets & 63 == 0:
                    self._publish(sent)
                    if stats.targets == limit or should_stop():
                        break
                elif stats.targets == limit:
                    break
                if single is not None:
                    version, number, port = single[0], single[1] + index, single[2]
                else:
                    version, number, port = space[index]
                packed = number.to_bytes(16 if version == 6 else 4, "big")
                frame, output = frames[version], outputs[version]
                for probe in range(probes):
                    ident = mac(packed, port, probe) if keyed else b""
                    output(frame(number, port, low + sent % span, ident))
                    sent += 1
                    if interval and sent % batch == 0:
                        for other in outputs.values():
                            other(None)
                        ahead = start + sent * interval - time.perf_counter()
                        if ahead > SLEEP_AHEAD:
                            time.sleep(ahead)
                stats.targets += 1
        except KeyboardInterrupt:
            stats.interrupted = True
        for output in outputs.values():
            output(None)
        stats.sent = sent
        stats.failed = sum(getattr(o, "failed", 0) for o in outputs.values())
        stats.finished = time.perf_counter()
        self._publish(sent)
        return stats

    def _publish(self, sent: int) -> None:
        if self.progress is not None:
            self.progress[2 * self.slot] = sent
            self.progress[2 * self.slot + 1] = self.stats.targets


class _Direct:
    """One send() per frame, for when the kernel offers no transmit ring."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.failed = 0

    def __call__(self, frame: bytes | None) -> None:
        if frame is None:
            return
        for _ in range(SEND_RETRIES):
            try:
                self.sock.send(frame)
                return
            except OSError as exc:
                if exc.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
                time.sleep(0.0001)
        self.failed += 1


class _Ringed:
    def __init__(self, ring: TxRing) -> None:
        self.ring = ring

    @property
    def failed(self) -> int:
        return self.ring.failed

    def __call__(self, frame: bytes | None) -> None:
        if frame is None:
            self.ring.flush()
        else:
            self.ring.queue(frame)


def _output(sock: socket.socket, batch: int) -> Callable[[bytes | None], None]:
    """A frame sink: queue(frame), or flush with None. The ring if the kernel has one."""
    try:
        return _Ringed(TxRing(sock, batch))
    except OSError:
        return _Direct(sock)
