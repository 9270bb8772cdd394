"""The sender: walk the target order, one raw frame per probe, at the asked rate.

It knows the key, the order and the routes; it keeps nothing about what it sent (the
sniffer validates answers from the key alone). Frames go out through AF_PACKET sockets,
one per interface, bypassing the kernel's routing per packet as zmap does.

The work is done a block of the order at a time (16,384 targets), never a target at a time:
the targets' addresses, their keyed IDs (one AES call for the block) and their frames are
numpy columns, and the frames reach the kernel's transmit ring a chunk per system call.
That is what lets CPython outpace zmap's C loop, which makes a system call per packet.

Pacing is a schedule, not a sleep per packet: packet ``n`` is due at ``start + n / rate``.
Chunks hold at most half a millisecond of packets at the asked rate, and the loop sleeps
only when it is more than a millisecond ahead, so the rate holds on average to well within
5% whatever the granularity of ``sleep`` (tests/test_scan_lab.py measures it from a
capture of what was sent).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from stunscan.scan.frames import FrameBuilder
from stunscan.scan.order import BLOCK
from stunscan.scan.ring import TxRing
from stunscan.scan.targets import Targets, TargetSpace
from stunscan.scan.txid import TransactionKey

SLEEP_AHEAD = 0.001
CHUNK = 512
"""Frames per system call at full speed: half the transmit ring."""
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
        blocks: Iterable[np.ndarray],
        should_stop: Callable[[], bool] = lambda: False,
        start_at: float | None = None,
    ) -> SendStats:
        """Send the targets of ``blocks`` (arrays of indexes, in order) until they or
        ``max_targets`` are exhausted, or ``should_stop()``. ``start_at`` (perf_counter, one
        clock for every process) lines several senders' schedules up, so that together they
        keep the rate from the first packet."""
        stats = self.stats
        interval = 1.0 / self.rate if self.rate > 0 else 0.0
        chunk = max(1, min(CHUNK, int(self.rate / 2000))) if interval else CHUNK
        outputs = {version: _output(sock) for version, sock in self.sockets.items()}
        if start_at is not None and start_at > time.perf_counter():
            time.sleep(start_at - time.perf_counter())
        # the schedule starts now that the rings are set up, or packets would burst to catch up
        stats.started = start = start_at if start_at is not None else time.perf_counter()
        sent = 0
        try:
            for version, frames in self.batches(blocks, chunk):
                outputs[version](frames)
                sent += len(frames)
                self._publish(sent)
                if should_stop():
                    break
                if interval:
                    ahead = start + sent * interval - time.perf_counter()
                    if ahead > SLEEP_AHEAD:
                        time.sleep(ahead)
        except KeyboardInterrupt:
            stats.interrupted = True
        stats.failed = sum(output.failed for output in outputs.values())
        stats.finished = time.perf_counter()
        self._publish(sent)
        return stats

    def batches(self, blocks: Iterable[np.ndarray], chunk: int) -> Iterator[tuple[int, np.ndarray]]:
        """(family, frames) ``chunk`` frames at a time: each block's targets family by
        family, each target's probes one after the other."""
        per_build = max(1, BLOCK // self.probes)  # frames built at once stay about a block
        remaining = self.max_targets
        built = 0
        for block in blocks:
            if remaining is not None:
                block, remaining = block[:remaining], remaining - min(remaining, len(block))
            for first in range(0, len(block), per_build):
                targets = self.space.columns(block[first : first + per_build])
                for version, builder in self.builders.items():
                    family = targets
                    if len(self.builders) > 1:
                        family = targets.select(targets.version == version)
                    frames = self._frames(builder, family, built)
                    built += len(frames)
                    for row in range(0, len(frames), chunk):
                        yield version, frames[row : row + chunk]
            if remaining == 0:
                return

    def _frames(self, builder: FrameBuilder, targets: Targets, built: int) -> np.ndarray:
        """Every probe's frame to ``targets``; source ports rotate with the frame count."""
        probes = self.probes
        numbers = np.zeros(len(targets), dtype=np.uint8)
        if probes > 1:
            targets = targets.select(np.repeat(np.arange(len(targets)), probes))
            numbers = np.tile(np.arange(probes, dtype=np.uint8), len(targets) // probes)
        count = len(targets)
        if builder.template.id_size:
            ids = self.key.transaction_ids(builder.route.version, targets, numbers)
        else:
            ids = np.empty((count, 0), dtype=np.uint8)
        low, high = self.source_ports
        rotation = (built + np.arange(count, dtype=np.int64)) % (high - low + 1)
        return builder.frames(targets, (low + rotation).astype(np.uint16), ids)

    def _publish(self, sent: int) -> None:
        self.stats.sent = sent
        self.stats.targets = sent // self.probes
        if self.progress is not None:
            self.progress[2 * self.slot] = sent
            self.progress[2 * self.slot + 1] = self.stats.targets


class _Direct:
    """One send() per frame, for when the kernel offers no transmit ring."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.failed = 0

    def __call__(self, frames: np.ndarray) -> None:
        for frame in frames:
            self._send(frame.tobytes())

    def _send(self, frame: bytes) -> None:
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

    def __call__(self, frames: np.ndarray) -> None:
        self.ring.send(frames)


def _output(sock: socket.socket) -> _Direct | _Ringed:
    """A frame sink taking a batch of frames: the transmit ring if the kernel has one."""
    try:
        return _Ringed(TxRing(sock))
    except OSError:
        return _Direct(sock)
