"""PACKET_TX_RING: frames written into memory shared with the kernel, sent a batch per call.

One ``send`` system call per frame costs CPython more than building the frame. With a
TPACKET_V2 transmit ring the sender copies a batch of frames into slots of an mmap'd ring
(one numpy assignment for the whole batch), marks them ready, and one ``send`` asks the
kernel to transmit every ready slot (packet_mmap.rst in the kernel's documentation). A
blocking ``send`` returns once the kernel has taken them all, so every slot is free again.
zmap 2.1 makes one sendto per packet.
"""

from __future__ import annotations

import mmap
import socket
import struct

import numpy as np

SOL_PACKET = 263
PACKET_VERSION, PACKET_TX_RING = 10, 13
TPACKET_V2 = 1
TP_STATUS_SEND_REQUEST, TP_STATUS_WRONG_FORMAT = 1, 4
HEADER = 32
"""Where a slot's frame starts: TPACKET_ALIGN(sizeof(struct tpacket2_hdr))."""
SLOT = 2048
BLOCK = 1 << 16
BLOCKS = 32


class TxRing:
    """The transmit ring of one AF_PACKET socket."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V2)
        sock.setsockopt(
            SOL_PACKET,
            PACKET_TX_RING,
            struct.pack("IIII", BLOCK, BLOCKS, SLOT, BLOCK * BLOCKS // SLOT),
        )
        self.sock = sock
        self.slots = BLOCK * BLOCKS // SLOT
        self.ring = mmap.mmap(sock.fileno(), BLOCK * BLOCKS)
        self.bytes = np.frombuffer(self.ring, dtype=np.uint8).reshape(self.slots, SLOT)
        self.headers = np.frombuffer(self.ring, dtype=np.uint32).reshape(self.slots, SLOT // 4)
        """Per slot: word 0 is tp_status, word 1 tp_len (struct tpacket2_hdr)."""
        self.next = 0
        self.failed = 0

    def send(self, frames: np.ndarray) -> None:
        """Transmit a batch of frames, one per row (any number; the ring takes half of its
        slots per system call)."""
        size = frames.shape[1]
        done = 0
        while done < len(frames):
            count = min(len(frames) - done, self.slots // 2, self.slots - self.next)
            rows = slice(self.next, self.next + count)
            status = self.headers[rows, 0]
            self.failed += int(np.count_nonzero(status & TP_STATUS_WRONG_FORMAT))
            self.bytes[rows, HEADER : HEADER + size] = frames[done : done + count]
            self.headers[rows, 1] = size
            self.headers[rows, 0] = TP_STATUS_SEND_REQUEST  # the kernel reads them in send() only
            self.sock.send(b"")
            self.next = (self.next + count) % self.slots
            done += count

    def close(self) -> None:
        self.ring.close()
