"""Offline analysis: frames -> IP -> UDP/TCP -> STUN messages -> paired records.

No Scapy on this path: the link layers (Ethernet with 802.1Q/QinQ, Linux cooked SLL and
SLL2, raw IPv4/IPv6, BSD loopback), IPv4 (options; fragments counted and skipped) and IPv6
(extension headers) are parsed here with slices, and messages are decoded with the fast
codec. STUN is found on port 3478 and, elsewhere, by the heuristic; ChannelData only on
3478 or inside a flow already seen carrying TURN. Over TCP, messages are cut out of a
bounded per-flow buffer, so one split across segments is still found.

Requests and responses pair by transaction ID on the reversed flow; amplification is the
response's STUN bytes over the request's, or over the report's 20-byte probe when the
request is not in the capture (and the record says so). Every table here is bounded, so
memory stays flat however long the capture.
"""

from __future__ import annotations

import dataclasses
import statistics
import struct
from collections import Counter, OrderedDict
from dataclasses import dataclass

from stunscan import codec
from stunscan import protocol as proto
from stunscan.capture import Frame
from stunscan.record import Record
from stunscan.sighting import Sighting

STUN_PORT = 3478
MAX_PENDING = 100_000
"""Unanswered requests remembered for pairing; the oldest are dropped (as unanswered)."""
PENDING_TIMEOUT = 60.0
"""Seconds of capture time after which a request counts as unanswered (RFC 8489 gives up
after about 40 s)."""
MAX_FLOWS = 20_000
"""TCP flows and TURN channel flows tracked; the oldest are forgotten first."""
FLOW_TIMEOUT = 600.0
"""Seconds of capture time a flow stays remembered without traffic (TURN's default
allocation lifetime)."""
MAX_FLOW_BUFFER = proto.HEADER_SIZE + proto.MAX_MESSAGE_LENGTH + 2
"""Bytes kept for one TCP flow: room for the largest message, RFC 4571 prefix included."""
RESPONSE_CLASSES = (proto.MessageClass.SUCCESS_RESPONSE, proto.MessageClass.ERROR_RESPONSE)

_COOKIE = proto.MAGIC_COOKIE_BYTES
_ETHERNET_VLAN = (0x8100, 0x88A8, 0x9100)
_IPV6_EXTENSIONS = (0, 43, 60, 44, 51)
_UDP_HEADER = struct.Struct("!HHH").unpack_from
_REQUEST = int(proto.MessageClass.REQUEST)
_CHANNEL_BIND = proto.message_type(0x009, 0)
"""ChannelBind's type with the class bits masked (0xFEEF clears them)."""
_INDICATION = int(proto.MessageClass.INDICATION)
CLIENT_KEY = 40
"""The prefix of a :func:`pair_key` that names the request's ID, transport and client."""


@dataclass(slots=True)
class Stats:
    """Counts for the summary: what was read, found, paired and skipped."""

    frames: int = 0
    not_ip: int = 0
    fragments: int = 0
    classic_messages: int = 0
    channel_data: int = 0
    malformed: int = 0
    requests: int = 0
    indications: int = 0
    responses: int = 0
    paired: int = 0
    unsolicited: int = 0
    unanswered: int = 0
    tcp_bytes_dropped: int = 0
    udp_messages: int = 0
    tcp_messages: int = 0

    @property
    def stun_messages(self) -> int:
        return self.udp_messages + self.tcp_messages

    def add(self, other: Stats) -> None:
        """Add another run's counts to these (see stunscan.parallel)."""
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    icmp_unreachable: int = 0
    icmp_quoting_stun: int = 0


@dataclass(slots=True)
class _TcpFlow:
    next_seq: int
    last_seen: float
    buffer: bytes = b""


class Analyzer:
    """Feed it frames; it returns the Records of servers answering (or of every message).

    The hot path is flat on purpose: no generators, and only the cheap ``codec.peek`` for
    each message; the full decode runs only for the messages that become records.
    """

    def __init__(self, *, all_messages: bool = False, track_unsolicited: bool = False) -> None:
        self.all_messages = all_messages
        self.stats = Stats()
        # The tables below are aged oldest first. They are OrderedDicts, not dicts, because
        # a dict that is popped at the front keeps the holes, and finding its first entry
        # then walks them all: that made a million-packet capture three times slower.
        self.pending: OrderedDict[bytes, tuple[int, float]] = OrderedDict()
        """Requests awaiting a response: pairing key (see :func:`pair_key`) -> (size, capture
        time)."""
        self.pending_by_client: OrderedDict[bytes, bytes] = OrderedDict()
        """The same requests by (ID, transport, client) only: an answer to CHANGE-REQUEST
        (RFC 3489, RFC 5780) legitimately comes from another address or port."""
        self.tally = ServerTally()
        self.unsolicited: dict[bytes, None] | None = None
        """With ``track_unsolicited``: the pairing keys of unanswered-for responses, so a
        merge can pair them with requests another worker saw (see stunscan.parallel)."""
        self.tcp_flows: OrderedDict[tuple[bytes, int, bytes, int], _TcpFlow] = OrderedDict()
        self.turn_flows: OrderedDict[tuple[str, bytes, int, bytes, int], float] = OrderedDict()
        """UDP flows with a TURN channel bound (ChannelBind seen) -> last seen."""
        self._out: list[Sighting] = []
        if track_unsolicited:
            self.unsolicited = {}

    # -- layers ----------------------------------------------------------------------------

    def feed(self, frame: Frame) -> list[Record]:
        """The records this frame adds (usually none)."""
        self.feed_frame(frame)
        return [self.record(sighting) for sighting in self.drain()]

    def feed_frame(self, frame: Frame) -> None:
        """Analyse a frame; what it adds waits in :meth:`drain` (see stunscan.fastpcap)."""
        self.stats.frames += 1
        data = frame.data
        linktype = frame.linktype
        if linktype == 1 and data[12:15] == b"\x08\x00\x45" and len(data) >= 34:
            # The common case first: Ethernet, IPv4 without options.
            if data[20] & 0x3F or data[21]:
                self.stats.fragments += 1
            else:
                total = (data[16] << 8) | data[17]
                src, dst = data[26:30], data[30:34]
                self._transport(frame.time, data[34 : 14 + total], data[23], src, dst)
            return
        if linktype == 1:  # Ethernet
            ethertype = (data[12] << 8) | data[13] if len(data) >= 14 else 0
            offset = 14
            while ethertype in _ETHERNET_VLAN and len(data) >= offset + 4:
                ethertype = (data[offset + 2] << 8) | data[offset + 3]
                offset += 4
        elif linktype == 113:  # Linux cooked (SLL)
            ethertype = (data[14] << 8) | data[15] if len(data) >= 16 else 0
            offset = 16
        elif linktype == 276:  # Linux cooked v2 (SLL2)
            ethertype = (data[0] << 8) | data[1] if len(data) >= 20 else 0
            offset = 20
        elif linktype in (101, 12, 14, 228, 229):  # raw IP
            ethertype = _version_ethertype(data, 0)
            offset = 0
        elif linktype in (0, 108):  # BSD loopback, OpenBSD loop
            ethertype = _version_ethertype(data, 4)
            offset = 4
        else:
            ethertype = 0
            offset = 0
        if ethertype == 0x0800:
            self._ipv4(frame.time, data, offset)
        elif ethertype == 0x86DD:
            self._ipv6(frame.time, data, offset)
        else:
            self.stats.not_ip += 1

    def record(self, sighting: Sighting) -> Record:
        """A sighting :meth:`drain` gave, decoded; the first of its server is tallied.

        Decoding waits until the records are wanted, one at a time, so that a batch of
        them is never all in memory (and the workers of stunscan.parallel never decode).
        """
        record = sighting.record()
        if sighting.first:
            self.tally.count(record)
        return record

    def drain(self) -> list[Sighting]:
        """What was found since the last call, in order, not decoded yet (see record)."""
        out = self._out
        if out:
            self._out = []
        return out

    def _ipv4(self, when: float, data: bytes, offset: int) -> None:
        if len(data) < offset + 20 or data[offset] >> 4 != 4:
            self.stats.not_ip += 1
            return
        header = (data[offset] & 0x0F) * 4
        if ((data[offset + 6] & 0x3F) << 8) | data[offset + 7]:  # MF flag or a fragment offset
            self.stats.fragments += 1
            return
        total = (data[offset + 2] << 8) | data[offset + 3]
        end = offset + total if total >= header else len(data)
        src = data[offset + 12 : offset + 16]
        dst = data[offset + 16 : offset + 20]
        self._transport(when, data[offset + header : end], data[offset + 9], src, dst)

    def _ipv6(self, when: float, data: bytes, offset: int) -> None:
        if len(data) < offset + 40:
            self.stats.not_ip += 1
            return
        payload_length = (data[offset + 4] << 8) | data[offset + 5]
        next_header = data[offset + 6]
        src = data[offset + 8 : offset + 24]
        dst = data[offset + 24 : offset + 40]
        end = offset + 40 + payload_length if payload_length else len(data)
        position = offset + 40
        while next_header in _IPV6_EXTENSIONS and position + 8 <= end:
            if next_header == 44:
                self.stats.fragments += 1
                return
            if next_header == 51:  # AH counts 4-byte units
                header_length = (data[position + 1] + 2) * 4
            else:
                header_length = (data[position + 1] + 1) * 8
            next_header = data[position]
            position += header_length
        self._transport(when, data[position:end], next_header, src, dst)

    def _transport(
        self, when: float, segment: bytes, protocol: int, src: bytes, dst: bytes
    ) -> None:
        if protocol == 17:
            if len(segment) > 8:
                sport, dport, length = _UDP_HEADER(segment)
                payload = segment[8:length] if length >= 8 else segment[8:]
                self._udp(when, payload, src, sport, dst, dport)
        elif protocol == 6:
            if len(segment) >= 20:
                self._tcp(when, segment, src, dst)
        elif (protocol, segment[:1]) in ((1, b"\x03"), (58, b"\x01")):
            self._icmp_unreachable(segment[8:], 40 if protocol == 58 else 0)

    def _icmp_unreachable(self, quoted: bytes, ipv6_header: int) -> None:
        """ICMP destination unreachable: counted, and whether it quotes a STUN datagram
        (tshark counts the quoted message as STUN; it never crossed the wire as one)."""
        self.stats.icmp_unreachable += 1
        if len(quoted) < 20:
            return
        if ipv6_header:
            header, inner_protocol = ipv6_header, quoted[6]
        else:
            header, inner_protocol = (quoted[0] & 0x0F) * 4, quoted[9]
        if inner_protocol == 17 and proto.classify(quoted[header + 8 :]) is not None:
            self.stats.icmp_quoting_stun += 1

    # -- UDP -------------------------------------------------------------------------------

    def _udp(
        self, when: float, payload: bytes, src: bytes, sport: int, dst: bytes, dport: int
    ) -> None:
        if not payload:
            return
        top = payload[0] & 0xC0
        if sport != STUN_PORT and dport != STUN_PORT:  # elsewhere only what the heuristic takes
            if top == 0:
                if payload[4:8] == _COOKIE:
                    if not proto.looks_like_stun(payload):
                        return
                elif not proto.looks_like_classic_stun(payload):
                    return
            elif top != 0x40 or ("udp", src, sport, dst, dport) not in self.turn_flows:
                return
        elif top & 0x80:
            return
        peeked = codec.peek(payload)
        if peeked is not None:
            self._message(when, "udp", payload, peeked, src, sport, dst, dport)

    # -- TCP -------------------------------------------------------------------------------

    def _tcp(self, when: float, segment: bytes, src: bytes, dst: bytes) -> None:
        sport = (segment[0] << 8) | segment[1]
        dport = (segment[2] << 8) | segment[3]
        seq = int.from_bytes(segment[4:8], "big")
        flags = segment[13]
        payload = segment[(segment[12] >> 4) * 4 :]
        key = (src, sport, dst, dport)
        flow = self.tcp_flows.get(key)
        if flags & 0x02:  # SYN: the data starts at seq + 1
            seq += 1
        if payload:
            if flow is None:
                if not (
                    sport == STUN_PORT or dport == STUN_PORT or _stream_looks_like_stun(payload)
                ):
                    return
                flow = self._track(key, seq, when)
            flow.last_seen = when
            self._tcp_data(when, flow, seq, payload, key)
        if flags & 0x05 and flow is not None:  # FIN or RST
            self.tcp_flows.pop(key, None)

    def _track(self, key: tuple[bytes, int, bytes, int], seq: int, when: float) -> _TcpFlow:
        flows = self.tcp_flows
        while flows:
            oldest = next(iter(flows))
            if len(flows) < MAX_FLOWS and flows[oldest].last_seen > when - FLOW_TIMEOUT:
                break
            self.stats.tcp_bytes_dropped += len(flows.pop(oldest).buffer)
        flow = flows[key] = _TcpFlow(seq, when)
        return flow

    def _tcp_data(
        self,
        when: float,
        flow: _TcpFlow,
        seq: int,
        payload: bytes,
        key: tuple[bytes, int, bytes, int],
    ) -> None:
        ahead = (seq - flow.next_seq) & 0xFFFFFFFF
        if ahead >= 1 << 31:  # starts before what we have: a retransmission, in part at least
            payload = payload[(flow.next_seq - seq) & 0xFFFFFFFF :]
            if not payload:
                return
        elif ahead:  # a gap: what was buffered can no longer complete
            self.stats.tcp_bytes_dropped += len(flow.buffer)
            flow.buffer = b""
            flow.next_seq = seq
        flow.next_seq = (flow.next_seq + len(payload)) & 0xFFFFFFFF
        buffer = flow.buffer + payload if flow.buffer else payload
        chunks, consumed = codec.stream_chunks(buffer)
        rest = buffer[consumed:]
        unframed = len(rest) >= proto.HEADER_SIZE and proto.stream_frame(rest, 0) is None
        if len(rest) > MAX_FLOW_BUFFER or unframed:
            self.stats.tcp_bytes_dropped += len(rest)
            rest = b""
        flow.buffer = rest
        src, sport, dst, dport = key
        for kind, chunk in chunks:
            peeked = codec.peek(chunk, datagram=kind != proto.CHANNEL_DATA)
            if peeked is not None:
                self._message(when, "tcp", chunk, peeked, src, sport, dst, dport)

    # -- messages --------------------------------------------------------------------------

    def _message(
        self,
        when: float,
        transport: str,
        data: bytes,
        peeked: tuple[str, int, bytes, int, bool],
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
    ) -> None:
        kind, msg_type, tid, size, ok = peeked
        stats = self.stats
        if transport == "udp":
            stats.udp_messages += 1
        else:
            stats.tcp_messages += 1
        if not ok:
            stats.malformed += 1
        if kind == proto.CHANNEL_DATA:
            stats.channel_data += 1
            return
        if kind == proto.TRUNCATED:
            return
        if kind == proto.CLASSIC_MESSAGE:
            stats.classic_messages += 1
        cls = (msg_type >> 4) & 1 | (msg_type >> 7) & 2
        if msg_type & 0xFEEF == _CHANNEL_BIND and transport == "udp":
            self._remember_turn_flow(when, src, sport, dst, dport)  # ChannelData will follow
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

    def _remember_turn_flow(
        self, when: float, src: bytes, sport: int, dst: bytes, dport: int
    ) -> None:
        flows = self.turn_flows
        while flows:
            oldest = next(iter(flows))
            if len(flows) < MAX_FLOWS and flows[oldest] > when - FLOW_TIMEOUT:
                break
            del flows[oldest]
        flows[("udp", src, sport, dst, dport)] = when
        flows[("udp", dst, dport, src, sport)] = when

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

    Bytes, not a tuple, so that the vectorised reader (``stunscan.fastpath``) can build the
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


def _version_ethertype(data: bytes, offset: int) -> int:
    if len(data) <= offset:
        return 0
    version = data[offset] >> 4
    return 0x0800 if version == 4 else 0x86DD if version == 6 else 0


def _stream_looks_like_stun(payload: bytes) -> bool:
    return (
        proto.looks_like_stun(payload, exact=False)
        or proto.looks_like_rfc4571_stun(payload)
        or proto.looks_like_classic_stun(payload, exact=False)
    )


class ServerTally:
    """The report's per-server figures: each responding server counted once, with the
    amplification, family and SOFTWARE of the response that first showed it."""

    def __init__(self) -> None:
        self.servers: set[bytes] = set()
        self.factors: list[float] = []
        self.families: Counter[int] = Counter()
        self.software: Counter[str] = Counter()

    def add(self, server: bytes, record: Record) -> None:
        self.servers.add(server)
        self.count(record)

    def count(self, record: Record) -> None:
        """The figures of a server's first response (already in :attr:`servers`)."""
        self.figures(record.amplification, record.family, record.software())

    def figures(self, amplification: float, family: int, software: str) -> None:
        """The same from the figures themselves (see stunscan.csvrow)."""
        self.factors.append(amplification)
        self.families[family] += 1
        if software:
            self.software[software] += 1


@dataclass(slots=True)
class Summary:
    """The report's own terms: servers per family, amplification, top SOFTWARE."""

    servers_ipv4: int
    servers_ipv6: int
    mean_amplification: float | None
    median_amplification: float | None
    top_software: list[tuple[str, int]]


def summarize(tally: ServerTally) -> Summary:
    """Per responding server, as the report counts: one amplification factor each."""
    factors = tally.factors
    return Summary(
        tally.families[4],
        tally.families[6],
        statistics.fmean(factors) if factors else None,
        statistics.median(factors) if factors else None,
        tally.software.most_common(5),
    )
