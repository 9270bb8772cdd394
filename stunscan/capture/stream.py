"""The capture pipeline's packet walk: frames -> link -> IP -> UDP/TCP/ICMP -> messages.

Every command that reads captures finds its messages here, so ``stunscan pcap``, ``decode``
and ``explain`` see the same ones. No Scapy on this path: the link layers (Ethernet with
802.1Q/QinQ, Linux cooked SLL and SLL2, raw IPv4/IPv6, BSD loopback), IPv4 (options;
fragments counted and skipped) and IPv6 (extension headers) are parsed with slices, and
messages are recognised with the fast codec's ``peek``. STUN is found on port 3478 and,
elsewhere, by the heuristic; ChannelData only on 3478 or inside a flow already seen
carrying a ChannelBind. Over TCP, messages are cut out of a bounded per-flow buffer, so
one split across segments is still found.

:class:`MessageFinder` walks the layers and hands every message it finds, with its
context, to :meth:`MessageFinder._found`; subclasses decide what a message is for (the
analyser of ``stunscan.pcap`` pairs them, ``stunscan.capture.messages`` lists them). The
walk is flat on purpose (no generators, no objects per packet): it is the hot path of
every packet the numpy fast path leaves to Python.
"""

from __future__ import annotations

import dataclasses
import struct
from collections import OrderedDict
from dataclasses import dataclass

from stunscan import codec
from stunscan import protocol as proto
from stunscan.capture.files import Frame

STUN_PORT = 3478
MAX_FLOWS = 20_000
"""TCP flows and TURN channel flows tracked; the oldest are forgotten first."""
FLOW_TIMEOUT = 600.0
"""Seconds of capture time a flow stays remembered without traffic (TURN's default
allocation lifetime)."""
MAX_FLOW_BUFFER = proto.HEADER_SIZE + proto.MAX_MESSAGE_LENGTH + 2
"""Bytes kept for one TCP flow: room for the largest message, RFC 4571 prefix included."""
TCP_BUFFER_BUDGET = 256 << 20
"""Bytes kept for all TCP flows together (``pcap --tcp-buffer``). Without it, MAX_FLOWS
flows of MAX_FLOW_BUFFER each could hold 1.3 GB: a capture of many half-finished messages
(a scan of TCP 3478, or a hostile one) would cost that much memory. When a segment would
go over it, the flows that began buffering longest ago are forgotten first (their bytes
counted as dropped, the flows as evicted)."""

_COOKIE = proto.MAGIC_COOKIE_BYTES
_ETHERNET_VLAN = (0x8100, 0x88A8, 0x9100)
_IPV6_EXTENSIONS = (0, 43, 60, 44, 51)
_UDP_HEADER = struct.Struct("!HHH").unpack_from
_CHANNEL_BIND = proto.message_type(0x009, 0)
"""ChannelBind's type with the class bits masked (0xFEEF clears them)."""

Peeked = tuple[str, int, bytes, int, bool]
"""What ``codec.peek`` says of a message: kind, type, transaction ID, size, well-formed."""


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
    tcp_flows_evicted: int = 0
    """TCP flows forgotten, with what they held, to stay within the reassembly budget."""
    udp_messages: int = 0
    tcp_messages: int = 0

    @property
    def stun_messages(self) -> int:
        return self.udp_messages + self.tcp_messages

    def add(self, other: Stats) -> None:
        """Add another run's counts to these (see stunscan.pcap.parallel)."""
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    icmp_unreachable: int = 0
    icmp_quoting_stun: int = 0


@dataclass(slots=True)
class _TcpFlow:
    next_seq: int
    last_seen: float
    buffer: bytes = b""


class MessageFinder:
    """Feed it frames; it finds the STUN and ChannelData messages they carry, counts them,
    and calls :meth:`_found` for each with its context."""

    def __init__(self, tcp_buffer: int = TCP_BUFFER_BUDGET) -> None:
        self.stats = Stats()
        self.tcp_buffer = tcp_buffer
        """Bytes of partial messages kept over all TCP flows at most (see TCP_BUFFER_BUDGET)."""
        self.tcp_buffered = 0
        """Bytes of partial messages kept now, over all TCP flows."""
        self.buffering: OrderedDict[tuple[bytes, int, bytes, int], None] = OrderedDict()
        """The TCP flows holding bytes, in the order they began to: evicted first to last."""
        # Aged oldest first. OrderedDicts, not dicts: a dict that is popped at the front
        # keeps the holes, and finding its first entry then walks them all.
        self.tcp_flows: OrderedDict[tuple[bytes, int, bytes, int], _TcpFlow] = OrderedDict()
        self.turn_flows: OrderedDict[tuple[str, bytes, int, bytes, int], float] = OrderedDict()
        """UDP flows with a TURN channel bound (ChannelBind seen) -> last seen."""

    def feed_frame(self, frame: Frame) -> None:
        """Analyse a frame; what it adds waits in :meth:`drain` (see stunscan.pcap.feed)."""
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
            self._icmp_unreachable(when, segment[8:], 40 if protocol == 58 else 0)

    def _icmp_unreachable(self, when: float, quoted: bytes, ipv6_header: int) -> None:
        """ICMP destination unreachable: counted, and whether it quotes a STUN datagram
        (tshark counts the quoted message as STUN; it never crossed the wire as one, so it
        is counted apart and handed to :meth:`_quoted`, not to :meth:`_found`)."""
        self.stats.icmp_unreachable += 1
        if len(quoted) < 20:
            return
        if ipv6_header:
            header, inner_protocol = ipv6_header, quoted[6]
            src, dst = quoted[8:24], quoted[24:40]
        else:
            header, inner_protocol = (quoted[0] & 0x0F) * 4, quoted[9]
            src, dst = quoted[12:16], quoted[16:20]
        message = quoted[header + 8 :]
        if inner_protocol == 17 and proto.classify(message) is not None:
            self.stats.icmp_quoting_stun += 1
            ports = quoted[header : header + 4]
            if len(ports) == 4:
                sport, dport = (ports[0] << 8) | ports[1], (ports[2] << 8) | ports[3]
                self._quoted(when, message, src, sport, dst, dport)

    def _quoted(
        self, when: float, data: bytes, src: bytes, sport: int, dst: bytes, dport: int
    ) -> None:
        """A STUN datagram (or what the ICMP error kept of it) quoted inside an ICMP
        unreachable, with the quoted datagram's own addresses. Only counted by default:
        ``stunscan.capture.messages`` lists it, marked; the analyser never pairs it."""

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
            self._forget(key)

    def _forget(self, key: tuple[bytes, int, bytes, int]) -> _TcpFlow | None:
        """Stop tracking a flow; what it held is no longer buffered (the caller counts it)."""
        flow = self.tcp_flows.pop(key, None)
        if flow is not None and flow.buffer:
            self.tcp_buffered -= len(flow.buffer)
            del self.buffering[key]
        return flow

    def _track(self, key: tuple[bytes, int, bytes, int], seq: int, when: float) -> _TcpFlow:
        flows = self.tcp_flows
        while flows:
            oldest = next(iter(flows))
            if len(flows) < MAX_FLOWS and flows[oldest].last_seen > when - FLOW_TIMEOUT:
                break
            forgotten = self._forget(oldest)
            assert forgotten is not None
            self.stats.tcp_bytes_dropped += len(forgotten.buffer)
        flow = flows[key] = _TcpFlow(seq, when)
        return flow

    def _keep(self, key: tuple[bytes, int, bytes, int], flow: _TcpFlow, rest: bytes) -> None:
        """Set the flow's buffer to ``rest`` within the budget over all flows: older
        buffering flows are evicted to make room; what cannot fit even alone is dropped."""
        stats = self.stats
        held = len(flow.buffer)
        if held:
            del self.buffering[key]
        self.tcp_buffered -= held
        flow.buffer = b""
        if not rest:
            return
        if len(rest) > self.tcp_buffer:
            stats.tcp_bytes_dropped += len(rest)
            return
        while self.tcp_buffered + len(rest) > self.tcp_buffer:
            oldest = next(iter(self.buffering))
            evicted = self._forget(oldest)
            assert evicted is not None
            stats.tcp_bytes_dropped += len(evicted.buffer)
            stats.tcp_flows_evicted += 1
        flow.buffer = rest
        self.tcp_buffered += len(rest)
        self.buffering[key] = None

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
            self._keep(key, flow, b"")
            flow.next_seq = seq
        flow.next_seq = (flow.next_seq + len(payload)) & 0xFFFFFFFF
        buffer = flow.buffer + payload if flow.buffer else payload
        chunks, consumed = codec.stream_chunks(buffer)
        rest = buffer[consumed:]
        unframed = len(rest) >= proto.HEADER_SIZE and proto.stream_frame(rest, 0) is None
        if len(rest) > MAX_FLOW_BUFFER or unframed:
            self.stats.tcp_bytes_dropped += len(rest)
            rest = b""
        if rest or flow.buffer:
            self._keep(key, flow, rest)
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
        peeked: Peeked,
        src: bytes,
        sport: int,
        dst: bytes,
        dport: int,
    ) -> None:
        kind, msg_type, _, _, ok = peeked
        stats = self.stats
        if transport == "udp":
            stats.udp_messages += 1
        else:
            stats.tcp_messages += 1
        if not ok:
            stats.malformed += 1
        if kind == proto.CHANNEL_DATA:
            stats.channel_data += 1
        elif kind == proto.CLASSIC_MESSAGE:
            stats.classic_messages += 1
        elif msg_type & 0xFEEF == _CHANNEL_BIND and transport == "udp" and kind != proto.TRUNCATED:
            self._remember_turn_flow(when, src, sport, dst, dport)  # ChannelData will follow
        self._found(when, transport, data, peeked, src, sport, dst, dport)

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
        """A message found (STUN, classic STUN, ChannelData, or one cut short: ``peeked[0]``
        says which): what it is for is the subclass's to say."""
        raise NotImplementedError

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
