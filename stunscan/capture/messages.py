"""Every message of a capture with its context, for ``stunscan decode`` and ``explain``.

The same walk as ``stunscan pcap`` (:class:`~stunscan.capture.stream.MessageFinder` over
:class:`~stunscan.capture.files.CaptureReader`), so every command finds the same messages:
ChannelData in bound channels, messages reassembled from TCP segments, and STUN quoted
inside ICMP errors set apart (``quoted_in_icmp``). Nothing here parses a packet; the walk
does, and the caller dissects the message bytes (with the Scapy layer, for decode).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from stunscan import codec
from stunscan import protocol as proto
from stunscan.capture.files import CaptureReader
from stunscan.capture.stream import MessageFinder, Peeked


@dataclass(slots=True)
class FoundMessage:
    """One message of a capture and where it was seen (tshark's frame number, 1-based)."""

    frame: int
    time: float
    transport: str
    """'udp' or 'tcp' (a message quoted in ICMP is the UDP datagram it quotes)."""
    src: str
    sport: int
    dst: str
    dport: int
    data: bytes
    kind: str
    """``protocol.classify``'s word: 'stun', 'classic', 'channel-data' or 'truncated'."""
    well_formed: bool
    quoted_in_icmp: bool = False
    """Quoted in an ICMP / ICMPv6 unreachable: it never crossed the wire as a message (its
    addresses are the quoted datagram's)."""


def address_text(packed: bytes) -> str:
    """An address from the walk (4 or 16 bytes) as text."""
    return socket.inet_ntop(socket.AF_INET6 if len(packed) == 16 else socket.AF_INET, packed)


class MessageLister(MessageFinder):
    """A finder that keeps what it finds as :class:`FoundMessage`, for :meth:`drain`."""

    def __init__(self) -> None:
        super().__init__()
        self._out: list[FoundMessage] = []

    def drain(self) -> list[FoundMessage]:
        """What the frames fed so far added, in order."""
        out = self._out
        self._out = []
        return out

    def _found(
        self,
        when: float,
        transport: str,
        data: bytes,
        peeked: Peeked,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
    ) -> None:
        self._add(when, transport, data, peeked[0], peeked[4], src, sport, dst, dport)

    def _quoted(
        self, when: float, data: bytes, src: bytes, sport: int, dst: bytes, dport: int
    ) -> None:
        peeked = codec.peek(data)  # the walk classified it: never None here
        kind, ok = (peeked[0], peeked[4]) if peeked is not None else (proto.TRUNCATED, False)
        self._add(when, "udp", data, kind, ok, src, sport, dst, dport, quoted_in_icmp=True)

    def _add(
        self,
        when: float,
        transport: str,
        data: bytes,
        kind: str,
        ok: bool,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        quoted_in_icmp: bool = False,
    ) -> None:
        """One message with its context, in the order the frames held them."""
        self._out.append(
            FoundMessage(
                self.stats.frames,
                when,
                transport,
                address_text(src),
                sport,
                address_text(dst),
                dport,
                data,
                kind,
                ok,
                quoted_in_icmp=quoted_in_icmp,
            )
        )


class CaptureMessages:
    """Iterate over the messages of one capture file (or stream); afterwards
    :attr:`problem` says why reading stopped early, if it did (damage, truncation)."""

    def __init__(
        self, path: str | Path, *, stream: BinaryIO | None = None, head: bytes = b""
    ) -> None:
        self.reader = CaptureReader(path, stream=stream, head=head)
        self.lister = MessageLister()

    @property
    def problem(self) -> str | None:
        return self.reader.problem

    def __iter__(self) -> Iterator[FoundMessage]:
        lister = self.lister
        for frame in self.reader:
            lister.feed_frame(frame)
            if lister._out:
                yield from lister.drain()
