"""PACKET_TX_RING: frames written into memory shared with the kernel, sent a batch per call.

One ``send`` system call per frame costs CPython more than building the frame. With a
TPACKET_V2 transmit ring the sender copies each frame into a slot of an mmap'd ring, marks
it ready, and one ``send`` asks the kernel to transmit every ready slot (packet_mmap.rst in
the kernel's documentation). zmap 2.1 makes one sendto per packet; this is how a Python
loop keeps up with it.
"""

from __future__ import annotations

import mmap
import socket
import struct

SOL_PACKET = 263
PACKET_VERSION, PACKET_TX_RING = 10, 13
TPACKET_V2 = 1
TP_STATUS_AVAILABLE, TP_STATUS_SEND_REQUEST, TP_STATUS_WRONG_FORMAT = 0, 1, 4
HEADER = 32
"""Where a slot's frame starts: TPACKET_ALIGN(sizeof(struct tpacket2_hdr))."""
SLOT = 2048
BLOCK = 1 << 16
BLOCKS = 32
_STATUS_LENGTH = struct.Struct("=II")


class TxRing:
    """The transmit ring of one AF_PACKET socket."""

    def __init__(self, sock: socket.socket, batch: int = 256) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(
            SOL_PACKET,
            PACKET_TX_RING,
            struct.pack("IIII", BLOCK, BLOCKS, SLOT, BLOCK * BLOCKS // SLOT),
        )
        self.sock = sock
        self.slots = BLOCK * BLOCKS // SLOT
        self.ring = mmap.mmap(sock.fileno(), BLOCK * BLOCKS)
        self.batch = max(1, min(batch, self.slots // 2))
        self.next = 0
        self.pending = 0
        self.failed = 0

    def queue(self, frame: bytes) -> None:
        """Put a frame in the next slot; transmit when a batch is full."""
        offset = self.next * SLOT
        ring = self.ring
        status = ring[offset]
        if status != TP_STATUS_AVAILABLE:
            if status & TP_STATUS_WRONG_FORMAT:
                self.failed += 1
            else:  # still queued from a lap ago: let the kernel finish it
                self.flush()
        size = len(frame)
        ring[offset + HEADER : offset + HEADER + size] = frame
        _STATUS_LENGTH.pack_into(ring, offset, TP_STATUS_SEND_REQUEST, size)
        self.next = (self.next + 1) % self.slots
        self.pending += 1
        if self.pending >= self.batch:
            self.flush()

    def flush(self) -> None:
        """Transmit every ready slot (blocks until the kernel has taken them)."""
        if self.pending:
            self.sock.send(b"")
            self.pending = 0

    def close(self) -> None:
        self.flush()
        self.ring.close()
