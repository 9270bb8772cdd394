"""PACKET_RX_RING: the kernel writes captured frames into memory shared with the sniffer.

With one ``recv`` per frame, CPython spends more on system calls than on judging answers.
A TPACKET_V2 receive ring (packet_mmap.rst in the kernel's documentation) is an mmap'd
array of fixed-size slots: the kernel copies each frame the socket's filter passes into
the next free slot, with its length and a nanosecond timestamp, and marks the slot ready.
Because the slots have one size, a batch of ready slots is a numpy array, so the sniffer
reads the headers of thousands of frames with a few whole-array operations and no system
call; it polls only when the ring is empty. Slots are handed back in order, as the kernel
fills them in order (a full ring drops the frame, and the kernel counts it:
:meth:`RxRing.statistics`).

The same ring serves the lab's reflector (benchmarks/lab_reflector.py), which answers
probes at rates the sniffer is measured against.
"""

from __future__ import annotations

import mmap
import select
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOL_PACKET = 263
PACKET_RX_RING, PACKET_VERSION, PACKET_STATISTICS = 5, 10, 6
TPACKET_V2 = 1
TP_STATUS_KERNEL, TP_STATUS_USER = 0, 1
RING_BYTES = 128 << 20
"""Captured frames the ring holds before the kernel drops: 65,536 of 2 KiB, a second of
answers at 65,000/s that the sniffer has not read yet."""
BLOCK_BYTES = 4 << 20
SMALLEST_SLOT, LARGEST_SLOT = 2048, 65536
FRAME_ROOM = 80 + 14 + 4
"""What a slot needs besides the IP packet: tpacket2_hdr and sockaddr_ll aligned (the
kernel puts the network header at 80), the Ethernet header, a VLAN tag."""
MAX_BATCH = 8192
FIRST_LOOK = 64

HEADER = np.dtype(
    {
        "names": ["status", "length", "captured", "mac", "seconds", "nanoseconds"],
        "formats": ["<u4", "<u4", "<u4", "<u2", "<u4", "<u4"],
        "offsets": [0, 4, 8, 12, 16, 20],
        "itemsize": 32,
    }
)
"""struct tpacket2_hdr, as far as the sniffer reads it (native order: x86 and ARM little)."""


@dataclass(slots=True)
class Frames:
    """A batch of ready slots, in capture order: where each frame starts in ``ring.flat``,
    how many bytes were captured, and when (seconds since the epoch)."""

    slots: np.ndarray
    starts: np.ndarray
    captured: np.ndarray
    wire: np.ndarray
    """The frame's length on the wire; more than ``captured`` if the slot cut it short."""
    times: np.ndarray

    def __len__(self) -> int:
        return len(self.slots)


def slot_size(interface: str) -> int:
    """A slot that holds a whole frame of ``interface``'s MTU (a power of two, at most
    64 KiB: an interface with a larger MTU has longer frames cut, and counted as cut)."""
    try:
        mtu = int(Path(f"/sys/class/net/{interface}/mtu").read_text())
    except (OSError, ValueError):
        mtu = 1500
    size = SMALLEST_SLOT
    while size < mtu + FRAME_ROOM and size < LARGEST_SLOT:
        size *= 2
    return size


class RxRing:
    """The receive ring of one AF_PACKET socket (set up before the socket is bound)."""

    def __init__(self, sock: socket.socket, slot: int = SMALLEST_SLOT, size: int = RING_BYTES):
        block = max(BLOCK_BYTES, slot)
        blocks = max(1, size // block)
        self.slot = slot
        self.slots = block * blocks // slot
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(
            SOL_PACKET, PACKET_RX_RING, struct.pack("IIII", block, blocks, slot, self.slots)
        )
        self.sock = sock
        self.ring = mmap.mmap(sock.fileno(), block * blocks)
        self.flat = np.frombuffer(self.ring, dtype=np.uint8)
        self.headers = np.ndarray((self.slots,), HEADER, self.ring, 0, (slot,))
        self.status = np.ndarray((self.slots,), np.uint32, self.ring, 0, (slot,))
        self.next = 0
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN | select.POLLERR)

    def ready(self) -> bool:
        """Whether the next slot holds a frame."""
        return bool(self.status[self.next] & TP_STATUS_USER)

    def wait(self, timeout: float) -> bool:
        """Whether a frame is ready, waiting up to ``timeout`` seconds for one."""
        if self.ready():
            return True
        self.poller.poll(int(timeout * 1000))
        return self.ready()

    def take(self, limit: int = MAX_BATCH) -> Frames:
        """The ready slots from the next one on (at most ``limit``), still owned by us
        until :meth:`release`: read what is needed of them first."""
        limit = min(limit, self.slots)
        count, look = 0, FIRST_LOOK
        while count < limit:  # statuses read in growing chunks: a small batch costs little
            look = min(look, limit - count)
            ready = self.status[(self.next + count + np.arange(look)) % self.slots] & TP_STATUS_USER
            if ready.all():
                count += look
                look *= 4
            else:
                count += int(np.argmin(ready))
                break
        slots = (self.next + np.arange(count)) % self.slots
        headers = self.headers[slots]
        starts = slots.astype(np.int64) * self.slot + headers["mac"]
        times = headers["seconds"] + headers["nanoseconds"] * 1e-9
        return Frames(
            slots,
            starts,
            headers["captured"].astype(np.int64),
            headers["length"].astype(np.int64),
            times,
        )

    def release(self, frames: Frames) -> None:
        """Hand a batch's slots back to the kernel, which fills them again in order."""
        if len(frames):
            self.status[frames.slots] = TP_STATUS_KERNEL
            self.next = int(frames.slots[-1] + 1) % self.slots

    def frame(self, frames: Frames, index: int) -> bytes:
        """Frame ``index`` of a batch, as captured."""
        start = int(frames.starts[index])
        return self.ring[start : start + int(frames.captured[index])]

    def statistics(self) -> tuple[int, int]:
        """(frames the filter passed, frames dropped because the ring was full) since the
        last call: the kernel resets its counters when they are read."""
        packets, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        return packets, drops

    def close(self) -> None:
        del self.flat, self.headers, self.status
        self.ring.close()
