"""What each packet of a batch is, decided for the whole batch at once with numpy.

For Ethernet frames carrying IPv4 (no options) or IPv6 (no extension headers) and UDP or
TCP, this repeats the decisions of :class:`stunscan.pcap.analyzer.Analyzer` on arrays: the STUN
heuristic, ``codec.classify``, ``codec.peek`` (``codec.well_formed`` included), the message
class. Packets whose handling is stateless (not STUN, ChannelData on 3478, a truncated
header) are only counted. Requests and responses become events, with their pairing keys
built here, for the analyser's pairing loop. Every packet it is not sure of (VLAN tags, IP
options, IPv6 extension headers, ICMP, ChannelBind, ChannelData or classic STUN off port
3478, TCP that is not one whole STUN message ending its connection, attribute kinds with
checks of their own...) becomes a GENERIC event: the analyser's own per-packet code runs on
it, in order, so results never change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stunscan import protocol as proto
from stunscan.capture.stream import STUN_PORT

NONE, GENERIC, REQUEST, RESPONSE, TCP_REQUEST, TCP_RESPONSE, TCP_INDICATION, TCP_EMPTY = range(8)
"""Event types. NONE: counted only. TCP events are decided when the analyser tracks no TCP
flow at that moment; otherwise they too run the generic code."""
ROW = 80
"""Bytes read from each record: its header and the frame through the ports after IPv6."""
PADDING = 256
"""Readable bytes a batch buffer must have after its data (reads past a short record)."""
MAX_ATTRIBUTES = 48
"""Attributes checked per message here; a message with more goes the generic way."""

_VLAN = np.zeros(65536, bool)
_VLAN[[0x8100, 0x88A8, 0x9100]] = True
_ODD_PROTOCOL = np.zeros(256, bool)
_ODD_PROTOCOL[[1, 58, 0, 43, 60, 44, 51]] = True
"""ICMP (unreachable messages are counted) and IPv6 extension headers: generic."""
OVER_TCP = np.zeros(16, bool)
OVER_TCP[[TCP_REQUEST, TCP_RESPONSE, TCP_INDICATION, TCP_EMPTY]] = True
ASKING = np.zeros(16, bool)
ASKING[[REQUEST, TCP_REQUEST]] = True
ANSWERING = np.zeros(16, bool)
ANSWERING[[RESPONSE, TCP_RESPONSE]] = True


def _attribute_rules() -> tuple[np.ndarray, ...]:
    """Per attribute code, what ``codec.well_formed`` asks of its value's length: at least,
    at most, a multiple of (mask), an address's (length, family) shape, or a check left to
    the generic code (``complex``)."""
    shortest = np.zeros(65536, np.int32)
    longest = np.full(65536, 0xFFFF, np.int32)
    multiple = np.zeros(65536, np.int32)
    address = np.zeros(65536, bool)
    complex_ = np.zeros(65536, bool)
    for code, spec in proto.ATTRIBUTES.items():
        kind = spec.kind
        if kind in ("string", "bytes"):
            continue
        if kind in ("address", "xor-address"):
            address[code] = True
        elif kind in proto._FIXED_LENGTHS and len(proto._FIXED_LENGTHS[kind]) == 1:
            shortest[code] = longest[code] = proto._FIXED_LENGTHS[kind][0]
        elif kind in ("error-code", "addr-error"):
            shortest[code] = proto._MINIMUM_LENGTHS[kind]
        elif kind == "hmac-sha256":
            shortest[code], longest[code], multiple[code] = 16, 32, 3
        elif kind == "attr-list":
            multiple[code] = 1
        else:
            complex_[code] = True
    return shortest, longest, multiple, address, complex_


_SHORTEST, _LONGEST, _MULTIPLE, _ADDRESS, _COMPLEX = _attribute_rules()
_ATTRIBUTE_HEADER = np.dtype({"names": ["code", "length"], "formats": [">u2", ">u2"]})
_CLASSIC_TYPES = np.zeros(65536, bool)
_CLASSIC_TYPES[list(proto.CLASSIC_MESSAGE_TYPES)] = True
_CHANNEL_BIND = proto.message_type(0x009, 0)


def _frame_type(order: str) -> np.dtype:
    """Fields of a record read as ROW bytes: its header, then the frame (offset + 16)."""
    fields = {
        "seconds": (order + "u4", 0),
        "fraction": (order + "u4", 4),
        "caplen": (order + "u4", 8),
        "ethertype": (">u2", 28),
        "version_ihl": ("u1", 30),
        "total4": (">u2", 32),
        "fragment4": (">u2", 36),
        "protocol4": ("u1", 39),
        "source4": (">u4", 42),
        "destination4": (">u4", 46),
        "source6_high": (">u8", 38),
        "source6_low": (">u8", 46),
        "destination6_high": (">u8", 54),
        "destination6_low": (">u8", 62),
        "payload6": (">u2", 34),
        "next6": ("u1", 36),
    }
    return np.dtype(
        {
            "names": list(fields),
            "formats": [f for f, _ in fields.values()],
            "offsets": [o for _, o in fields.values()],
            "itemsize": ROW,
        }
    )


_STUN_HEADER = np.dtype(
    {
        "names": ["type", "length", "cookie"],
        "formats": [">u2", ">u2", ">u4"],
        "offsets": [0, 2, 4],
        "itemsize": 20,
    }
)


_TRANSPORT = np.dtype(
    {
        "names": ["sport", "dport", "length", "offset", "flags"],
        "formats": [">u2", ">u2", ">u2", "u1", "u1"],
        "offsets": [0, 2, 4, 12, 13],
        "itemsize": 16,
    }
)
"""A UDP header (``length``) or a TCP header (``offset``: data offset, ``flags``)."""
_MESSAGE_EVENTS = np.array(
    [REQUEST, NONE, RESPONSE, RESPONSE, TCP_REQUEST, TCP_INDICATION, TCP_RESPONSE, TCP_RESPONSE],
    np.int8,
)
"""The event of a message the fast path takes, by (over TCP) << 2 | class; a UDP
indication is only counted."""


def _words(names: list[str]) -> np.dtype:
    return np.dtype({"names": names, "formats": [">u8"] * len(names)})


_KEY = _words(
    [
        "id_high",
        "id_low",
        "client_high",
        "client_low",
        "client_tail",
        "server_high",
        "server_low",
        "server_tail",
    ]
)
"""``stunscan.pcap.analyzer.pair_key`` as words."""
_SERVER = _words(["high", "low", "tail"])
"""``stunscan.pcap.analyzer.server_key`` as words."""
_IDENT = np.dtype(
    {
        "names": ["classic_high", "classic_low", "stun_high", "stun_low"],
        "formats": [">u8", ">u8", ">u8", ">u4"],
        "offsets": [0, 8, 4, 12],
        "itemsize": 16,
    }
)
"""The 16 bytes after a STUN type and length: a classic ID, or the cookie and an ID."""


@dataclass(slots=True)
class Batch:
    """A batch decided: counts for the stats, then the events in packet order (arrays).

    Per event: its type, packet index, pairing key and server key as 64-bit words (see
    ``stunscan.pcap.analyzer.pair_key``; meaningless for GENERIC), message size and
    malformed flag. Per packet: ``times`` (capture times), ``offsets`` (the records'),
    ``payload`` and ``length`` (the transport payload), ``ipv4`` and the ports let the
    analyser cut out the bytes the generic code would hand to the decoder, for the few
    events that become records.
    """

    counts: dict[str, int]
    types: np.ndarray
    packets: np.ndarray
    keys: np.ndarray
    servers: np.ndarray
    sizes: np.ndarray
    malformed: np.ndarray
    times: np.ndarray
    offsets: np.ndarray
    payload: np.ndarray
    length: np.ndarray
    ipv4: np.ndarray
    sport: np.ndarray
    dport: np.ndarray


class Classifier:
    """Decides batches of Ethernet records of one capture (byte order, time resolution)."""

    def __init__(self, order: str, resolution: float, all_messages: bool) -> None:
        self.frame = _frame_type(order)
        self.resolution = resolution
        self.all_messages = all_messages

    def times(self, rows: np.ndarray) -> np.ndarray:
        """Capture times exactly as CaptureReader computes them (float64, same rounding)."""
        return rows["seconds"].astype(np.float64) + rows["fraction"].astype(
            np.float64
        ) * np.float64(self.resolution)

    def classify(self, buffer: np.ndarray, offsets: np.ndarray) -> Batch:
        """Decide the records starting at ``offsets`` in ``buffer`` (PADDING bytes after).

        Each step names the generic code it repeats; int32 throughout, as every length
        here is below 2**24.
        """
        raw_rows = sliding_window_view(buffer, ROW)[offsets]
        rows = raw_rows.view(self.frame).ravel()
        caplen = rows["caplen"].astype(np.int32)
        # Analyzer.feed: Ethernet, then _ipv4 (its fast case) or _ipv6
        ethertype = rows["ethertype"].astype(np.int32) * (caplen >= 14)
        ipv4 = (ethertype == 0x0800) & (rows["version_ihl"] == 0x45) & (caplen >= 34)
        fragment = ipv4 & (rows["fragment4"] & 0x3FFF != 0)
        total4 = rows["total4"].astype(np.int32)
        whole4 = ipv4 & ~fragment & (total4 >= 20) & (total4 + 14 <= caplen)
        payload6 = rows["payload6"].astype(np.int32)
        ipv6 = ethertype == 0x86DD
        whole6 = ipv6 & (caplen >= 54) & (payload6 > 0) & (payload6 + 54 <= caplen)
        ip = whole4 | whole6
        not_ip = ((ethertype != 0x0800) & ~ipv6 & ~_VLAN[ethertype]) | (ipv6 & (caplen < 54))
        # the rest of _ipv4 (options...), VLAN tags, IPv6 of odd extent: generic
        generic = ~(ip | fragment | not_ip)
        protocol = np.where(whole4, rows["protocol4"], rows["next6"])
        generic |= ip & _ODD_PROTOCOL[protocol]
        segment = np.where(whole4, total4 - 20, payload6)
        transport = offsets.astype(np.int32) + np.where(whole4, 16 + 34, 16 + 54)
        header = sliding_window_view(buffer, 16)[transport].view(_TRANSPORT).ravel()
        sport = header["sport"].astype(np.int32)
        dport = header["dport"].astype(np.int32)
        # _transport: the UDP payload as it cuts it; _tcp: the payload after the options
        udp = ip & (protocol == 17) & (segment > 8)
        tcp = ip & (protocol == 6) & (segment >= 20)
        udp_length = header["length"].astype(np.int32)
        options = (header["offset"] >> 4).astype(np.int32) * 4
        length = np.where(
            udp,
            np.where(udp_length >= 8, np.minimum(udp_length, segment), segment) - 8,
            np.where(tcp, np.maximum(segment - options, 0), 0),
        )
        payload = transport + np.where(tcp, options, 8)
        # the STUN header (what is past the payload's end is masked by ``length``)
        stun_header = sliding_window_view(buffer, 20)[payload].view(_STUN_HEADER).ravel()
        msg_type = stun_header["type"].astype(np.int32)
        msg_length = stun_header["length"].astype(np.int32)
        top = msg_type >> 14
        cookie = (length >= 8) & (stun_header["cookie"] == proto.MAGIC_COOKIE)
        exact = (length >= 20) & (msg_length & 3 == 0) & (msg_length + 20 == length)
        classic_type = _CLASSIC_TYPES[msg_type]
        on_port = (sport == STUN_PORT) | (dport == STUN_PORT)
        # _udp off port 3478: the heuristics, or TURN flows the generic code keeps
        udp &= length > 0
        off_port = udp & ~on_port
        plain = top == 0
        stun = off_port & plain & cookie & exact
        generic |= off_port & ((plain & ~cookie & exact & classic_type) | (top == 1))
        # on port 3478: codec.classify
        on = udp & on_port
        channel = on & (top == 1) & (length >= 4) & (msg_length + 4 <= length)
        on &= plain
        truncated = on & (length < 20)
        on &= length >= 20
        classic = on & ~cookie & classic_type
        stun |= on & cookie
        message = stun | classic
        # over TCP: only a lone message with the cookie, in a segment that FIN or RST ends
        carrying = tcp & (length > 0)
        tcp_message = carrying & plain & cookie & exact & (header["flags"] & 0x05 != 0)
        generic |= carrying & ~tcp_message
        # codec.peek: well formed? (some attribute kinds are left to the generic code)
        ok = exact.copy()
        checked = (message | tcp_message) & exact
        verdict, undecided = self._well_formed(buffer, payload[checked], length[checked])
        ok[checked] = verdict
        generic[np.flatnonzero(checked)[undecided]] = True
        # Analyzer._message: ChannelBind over UDP remembers a TURN flow: generic
        cls = (msg_type >> 4) & 1 | (msg_type >> 7) & 2
        generic |= message & ((msg_type & 0xFEEF) == _CHANNEL_BIND)
        if self.all_messages:  # every request and indication is a record: generic
            generic |= (message | tcp_message) & (cls < 2)
        fast = (message | tcp_message) & ~generic
        kind = np.where(
            generic,
            GENERIC,
            np.where(
                fast,
                _MESSAGE_EVENTS[(tcp_message << 2) | cls],
                np.where(carrying | ~tcp, NONE, TCP_EMPTY),
            ),
        ).astype(np.int8)

        counted = kind == NONE
        udp_fast = fast & ~tcp_message
        fast_bad = udp_fast & ~ok
        counts = {
            "frames": int(np.count_nonzero(counted | udp_fast)),
            "not_ip": int(np.count_nonzero(counted & not_ip)),
            "fragments": int(np.count_nonzero(counted & fragment)),
            "udp_messages": int(np.count_nonzero(udp_fast | (counted & (channel | truncated)))),
            "channel_data": int(np.count_nonzero(counted & channel)),
            "malformed": int(np.count_nonzero(fast_bad | (counted & truncated))),
            "classic_messages": int(np.count_nonzero(udp_fast & classic)),
            "requests": int(np.count_nonzero(kind == REQUEST)),
            "indications": int(np.count_nonzero(udp_fast & (cls == 1))),
            "responses": int(np.count_nonzero(kind == RESPONSE)),
        }
        events = np.flatnonzero(kind > NONE)
        event_kind = kind[events]
        keys, servers = self._keys(
            raw_rows[events].view(self.frame).ravel(),  # (whole rows: a fast copy)
            sliding_window_view(buffer, 16)[payload[events] + 4].view(_IDENT).ravel(),
            sport[events],
            dport[events],
            classic[events],
            whole4[events],
            OVER_TCP[event_kind],
            ASKING[event_kind],
        )
        times = self.times(rows)
        return Batch(
            counts,
            event_kind,
            events,
            keys,
            servers,
            np.minimum(20 + msg_length, length)[events],
            ~ok[events],
            times,
            offsets,
            payload,
            length,
            whole4,
            sport,
            dport,
        )

    def _well_formed(
        self, buffer: np.ndarray, start: np.ndarray, end: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``codec.well_formed`` of the messages at ``start`` (absolute) ending ``end`` bytes
        later, and which it could not decide here (an attribute kind checked in Python)."""
        verdict = np.ones(start.size, bool)
        undecided = np.zeros(start.size, bool)
        at = np.full(start.size, 20, np.int32)
        active = np.flatnonzero(at < end)
        headers = sliding_window_view(buffer, 4)
        for _ in range(MAX_ATTRIBUTES):
            if not active.size:
                break
            offset = at[active]
            limit = end[active]
            where = start[active] + offset
            header = headers[where].view(_ATTRIBUTE_HEADER).ravel()
            code = header["code"]
            size = header["length"].astype(np.int32)
            family = buffer[where + 5]
            fits = offset + 4 + size <= limit  # (the header fits too: size >= 0)
            complex_ = _COMPLEX[code] & fits
            good = (
                fits
                & ~complex_
                & (size >= _SHORTEST[code])
                & (size <= _LONGEST[code])
                & (size & _MULTIPLE[code] == 0)
                & (~_ADDRESS[code] | ((size == 8) & (family == 1)) | ((size == 20) & (family == 2)))
            )
            verdict[active[~good & ~complex_]] = False
            undecided[active[complex_]] = True
            at[active] = offset + 4 + ((size + 3) & ~3)
            active = active[good & (at[active] < limit)]
        undecided[active] = True
        return verdict, undecided

    def _keys(
        self,
        rows: np.ndarray,
        ident: np.ndarray,
        sport: np.ndarray,
        dport: np.ndarray,
        classic: np.ndarray,
        ipv4: np.ndarray,
        tcp: np.ndarray,
        request: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``pair_key`` and ``server_key`` of each event as structured rows of 64-bit words
        (whole-array integer operations, no byte shuffling)."""
        count = rows.size
        zero = np.zeros(count, np.uint64)
        source_high = np.where(ipv4, rows["source4"].astype(np.uint64) << 32, rows["source6_high"])
        source_low = np.where(ipv4, zero, rows["source6_low"])
        destination_high = np.where(
            ipv4, rows["destination4"].astype(np.uint64) << 32, rows["destination6_high"]
        )
        destination_low = np.where(ipv4, zero, rows["destination6_low"])
        family = np.where(ipv4, 4, 16).astype(np.uint64)
        marker = (tcp | (classic << 1)).astype(np.uint64)
        client_port = np.where(request, sport, dport).astype(np.uint64)
        server_port = np.where(request, dport, sport).astype(np.uint64)
        keys = np.empty(count, _KEY)
        keys["id_high"] = np.where(classic, ident["classic_high"], ident["stun_high"])
        keys["id_low"] = np.where(
            classic, ident["classic_low"], ident["stun_low"].astype(np.uint64) << 32
        )
        keys["client_high"] = np.where(request, source_high, destination_high)
        keys["client_low"] = np.where(request, source_low, destination_low)
        keys["client_tail"] = (client_port << 48) | (marker << 40) | (family << 32)
        keys["server_high"] = np.where(request, destination_high, source_high)
        keys["server_low"] = np.where(request, destination_low, source_low)
        keys["server_tail"] = server_port << 48
        servers = np.empty(count, _SERVER)
        servers["high"] = source_high
        servers["low"] = source_low
        servers["tail"] = (
            (sport.astype(np.uint64) << 48) | (tcp.astype(np.uint64) << 40) | (family << 32)
        )
        return keys, servers
