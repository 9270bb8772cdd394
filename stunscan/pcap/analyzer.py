"""Requests paired with responses: the records ``stunscan pcap`` reports.

The capture pipeline (``stunscan.capture.stream``) finds the messages; here requests and
responses pair by transaction ID on the reversed flow, and amplification is the
response's STUN bytes over the request's, or over the report's 20-byte probe when the
request is not in the capture (and the record says so). Every table here is bounded, so
memory stays flat however long the capture.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from stunscan import protocol as proto
from stunscan.capture.files import Frame
from stunscan.capture.stream import STUN_PORT, TCP_BUFFER_BUDGET, MessageFinder, Peeked, Stats
from stunscan.pcap.block import SightingBlock, expand
from stunscan.pcap.sighting import Sighting
from stunscan.record import Record
from stunscan.tally import ServerTally

__all__ = ["STUN_PORT", "Analyzer", "Stats", "pair_key", "server_key"]

MAX_PENDING = 100_000
"""Unanswered requests remembered for pairing; the oldest are dropped (as unanswered)."""
PENDING_TIMEOUT = 60.0
"""Seconds of capture time after which a request counts as unanswered (RFC 8489 gives up
after about 40 s)."""
RESPONSE_CLASSES = (proto.MessageClass.SUCCESS_RESPONSE, proto.MessageClass.ERROR_RESPONSE)
_REQUEST = int(proto.MessageClass.REQUEST)
_INDICATION = int(proto.MessageClass.INDICATION)
CLIENT_KEY = 40
"""The prefix of a :func:`pair_key` that names the request's ID, transport and client."""


class Analyzer(MessageFinder):
    """Feed it frames; it returns the Records of servers answering (or of every message).

    Only the cheap ``codec.peek`` runs for each message; the full decode runs only for the
    messages that become records.
    """

    def __init__(
        self,
        *,
        all_messages: bool = False,
        track_unsolicited: bool = False,
        tcp_buffer: int = TCP_BUFFER_BUDGET,
    ) -> None:
        super().__init__(tcp_buffer)
        self.all_messages = all_messages
        self.pending: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        """Requests awaiting a response: pairing key (see :func:`pair_key`) -> (size, capture
        time)."""
        self.pending_by_client: OrderedDict[bytes, bytes] = OrderedDict()
        """The same requests by (ID, transport, client) only: an answer to CHANGE-REQUEST
        (RFC 3489, RFC 5780) legitimately comes from another address or port."""
        self.tally = ServerTally()
        self.unsolicited: dict[bytes, None] | None = None
        """With ``track_unsolicited``: the pairing keys of unanswered-for responses, so a
        merge can pair them with requests another worker saw (see stunscan.pcap.parallel)."""
        self._out: list[Sighting | SightingBlock] = []
        if track_unsolicited:
            self.unsolicited = {}

    def feed(self, frame: Frame) -> list[Record]:
        """The records this frame adds (usually none)."""
        self.feed_frame(frame)
        return [self.record(sighting) for sighting in expand(self.drain())]

    def record(self, sighting: Sighting) -> Record:
        """A sighting :meth:`drain` gave, decoded; the first of its server is tallied.

        Decoding waits until the records are wanted, one at a time, so that a batch of
        them is never all in memory (and the workers of stunscan.pcap.parallel never decode).
        """
        record = sighting.record()
        if sighting.first:
            self.tally.count(record)
        return record

    def drain(self) -> list[Sighting | SightingBlock]:
        """What was found since the last call, in order, not decoded yet (see record);
        the fast path's finds come as blocks (``stunscan.pcap.block``)."""
        out = self._out
        if out:
            self._out = []
        return out

    def found_block(self, block: SightingBlock) -> None:
        """First responses of new servers the fast path found (already in the tally)."""
        self._out.append(block)

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
        kind, msg_type, tid, size, _ = peeked
        if kind == proto.CHANNEL_DATA or kind == proto.TRUNCATED:
            return
        stats = self.stats
        cls = (msg_type >> 4) & 1 | (msg_type >> 7) & 2
        if cls == _REQUEST:
            stats.requests += 1
            self._request(when, pair_key(tid, transport, src, sport, dst, dport), size)
            if self.all_messages:
                self._emit(when, transport, data, src, sport, dst, dport, None)
            return
        if cls == _INDICATION:
            stats.indications += 1
            if self.all_messages:
                self._emit(when, transport, data, src, sport, dst, dport, None)
            return
        stats.responses += 1
        key = pair_key(tid, transport, dst, dport, src, sport)
        request_size, moved = self._pair(key)
        server = server_key(transport, src, sport)
        if server in self.tally.servers and not self.all_messages:
            return
        sighting = self._emit(when, transport, data, src, sport, dst, dport, request_size, key)
        self._report(server, sighting, moved)

    def _request(self, when: float, key: bytes, size: int) -> None:
        """Remember a request for pairing, first ageing out the oldest (as unanswered)."""
        pending = self.pending
        by_client = self.pending_by_client
        while pending:
            oldest, (_, asked_at) = next(iter(pending.items()))
            if len(pending) < MAX_PENDING and asked_at > when - PENDING_TIMEOUT:
                break
            del pending[oldest]
            by_client.pop(oldest[:CLIENT_KEY], None)
            self.stats.unanswered += 1
        pending[key] = (size, when)
        by_client[key[:CLIENT_KEY]] = key  # (ID, transport, client): no larger than pending

    def _pair(self, key: bytes) -> tuple[int | None, bool]:
        """Pair a response with its pending request: (the request's size or None, whether
        it answered from another address than the one asked)."""
        request = self.pending.pop(key, None)
        moved = False
        client = key[:CLIENT_KEY]
        if request is not None:
            if self.pending_by_client.get(client) == key:
                del self.pending_by_client[client]
        else:
            asked = self.pending_by_client.pop(client, None)
            if asked is not None:
                request = self.pending.pop(asked, None)
                moved = request is not None
        if request is None:
            self.stats.unsolicited += 1
            if self.unsolicited is not None and len(self.unsolicited) < MAX_PENDING:
                self.unsolicited[key] = None
            return None, False
        self.stats.paired += 1
        return request[0], moved

    def _report(self, server: bytes, sighting: Sighting, moved: bool) -> None:
        sighting.moved = moved
        if server not in self.tally.servers:
            self.tally.servers.add(server)
            sighting.first = True

    def _emit(
        self,
        when: float,
        transport: str,
        data: bytes,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
        request_size: int | None,
        key: bytes | None = None,
    ) -> Sighting:
        sighting = Sighting(when, transport, data, src, sport, dst, dport, request_size, key)
        self._out.append(sighting)
        return sighting

    def finish(self) -> None:
        """End of capture: requests still pending were never answered."""
        self.stats.unanswered += len(self.pending)
        self.pending.clear()
        self.pending_by_client.clear()


_PAIR_KEY = struct.Struct(">16s16sHBB4x16sH6x")
_SERVER_KEY = struct.Struct(">16sHBB4x")


def pair_key(
    tid: bytes, transport: str, client: bytes, client_port: int, server: bytes, server_port: int
) -> bytes:
    """How a request and its response find each other: one flat bytes key of fixed layout.

    Bytes, not a tuple, so that the vectorised reader (``stunscan.capture.fastpath``) can build the
    same keys for a whole batch at C speed, as eight big-endian 64-bit words: the ID and the
    client address (each padded to 16 bytes); the client port, a marker (bit 0 TCP, bit 1 a
    16-byte classic ID) and the address length; the server address and port. Its first
    :data:`CLIENT_KEY` bytes are the (ID, transport, client) key of ``pending_by_client``.
    """
    marker = (transport == "tcp") | (len(tid) == 16) << 1
    return _PAIR_KEY.pack(tid, client, client_port, marker, len(client), server, server_port)


def server_key(transport: str, address: bytes, port: int) -> bytes:
    """One responding server, as the tally counts it: address, port, transport (three
    big-endian 64-bit words, see :func:`pair_key`)."""
    return _SERVER_KEY.pack(address, port, transport == "tcp", len(address))
