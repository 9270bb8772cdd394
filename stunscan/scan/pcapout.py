"""``--pcap-out``: what the sniffer received, as a classic pcap that Wireshark opens.

Twenty lines instead of Scapy's PcapWriter, because the receive path must not import Scapy.
Every frame the kernel filter passed is kept, valid or not, so that a forged or stray
answer the summary counted can be looked at afterwards.
"""

from __future__ import annotations

import struct
import time
from typing import BinaryIO

from stunscan.scan.bpf import SNAPLEN

LINKTYPE_ETHERNET = 1


class PcapWriter:
    """Microsecond pcap, native byte order, Ethernet frames."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        stream.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))
        stream.flush()  # before the sniffer forks: a header left in the buffer is written twice

    def write(self, frame: bytes, when: float | None = None) -> None:
        when = time.time() if when is None else when
        seconds = int(when)
        micros = int((when - seconds) * 1_000_000)
        self.stream.write(struct.pack("=IIII", seconds, micros, len(frame), len(frame)) + frame)

    def flush(self) -> None:
        self.stream.flush()
