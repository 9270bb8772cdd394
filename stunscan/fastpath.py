"""What each packet of a batch is, decided for the whole batch at once with numpy.

For Ethernet frames carrying IPv4 (no options) or IPv6 (no extension headers) and UDP or
TCP, this repeats the decisions of :class:`stunscan.pcap.Analyzer` on arrays: the STUN
heuristic, ``codec.classify``, ``codec.peek`` (``codec.well_formed`` included), the message
class. Packets whose handling is stateless (not STUN, ChannelData on 3478, a truncated
header) are only counted. Requests and responses become events, with their pairing keys
built here, for the analyser's pairing loop. Every packet it is not sure of (VLAN tags, IP
options, fragments' neighbours, ICMP, ChannelBind, ChannelData off port 3478, classic STUN
off port 3478, TCP that is not one whole STUN message...) becomes a GENERIC event: the
analyser's own per-packet code runs on it, in order, so results never change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stunscan import protocol as proto
from stunscan.pcap import STUN_PORT

NONE, GENERIC, REQUEST, RESPONSE, TCP_REQUEST, TCP_RESPONSE, TCP_INDICATION, TCP_EMPTY = range(8)
"""Event types. NONE: counted only. TCP events are decided when the analyser tracks no TCP
flow at that moment; otherwise they too run the generic code."""
ROW = 100
"""Bytes read from each record: its header and the frame through a STUN header over IPv6."""
PADDING = 256
"""Readable bytes a batch buffer must have after its data (reads past a short record)."""
MAX_ATTRIBUTES = 48
"""Attributes checked per message here; a message with more goes the generic way."""

_IPV6_EXTENSIONS = (0, 43, 60, 44, 51)
_VLANS = (0x8100, 0x88A8, 0x9100)

# Per attribute code, what ``codec.well_formed`` checks of its length (see _attribute_rules).
_ANY, _FIXED, _ADDRESS, _MINIMUM, _HMAC_SHA256, _EVEN, _COMPLEX = range(7)


def _attribute_rules() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rule = np.full(65536, _ANY, np.int8)
    first = np.full(65536, -1, np.int64)
    second = np.full(65536, -1, np.int64)
    for code, spec in proto.ATTRIBUTES.items():
        kind = spec.kind
        if kind in ("string", "bytes"):
            continue
        if kind in ("address", "xor-address"):
            rule[code] = _ADDRESS
        elif kind in proto._FIXED_LENGTHS:
            sizes = proto._FIXED_LENGTHS[kind]
            if len(sizes) > 2:
                rule[code] = _COMPLEX
                continue
            rule[code] = _FIXED
            first[code] = sizes[0]
            second[code] = sizes[-1]
        elif kind in ("error-code", "addr-error"):
            rule[code] = _MINIMUM
            first[code] = proto._MINIMUM_LENGTHS[kind]
        elif kind == "hmac-sha256":
            rule[code] = _HMAC_SHA256
        elif kind == "attr-list":
            rule[code] = _EVEN
        else:
            rule[code] = _COMPLEX
    return rule, first, second


_RULE, _FIRST, _SECOND = _attribute_rules()
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
        "payload6": (">u2", 34),
        "next6": ("u1", 36),
        "sport4": (">u2", 50),
        "dport4": (">u2", 52),
        "ulen4": (">u2", 54),
        "doff4": ("u1", 62),
        "flags4": ("u1", 63),
        "sport6": (">u2", 70),
        "dport6": (">u2", 72),
        "ulen6": (">u2", 74),
        "doff6": ("u1", 82),
        "flags6": ("u1", 83),
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


@dataclass(slots=True)
class Batch:
    """A batch decided: counts for the stats, then the events in packet order.

    Per event: its type, packet index, capture time, pairing key and server key (see
    ``stunscan.pcap.pair_key``; meaningless for GENERIC), message size, malformed flag.
    ``payload`` and ``length`` (the transport payload), ``source``, ``address_length`` and
    the ports (per packet) let the analyser cut out the bytes the generic code would hand
    to the decoder, for the few events that become records.
    """

    counts: dict[str, int]
    types: list[int]
    packets: list[int]
    times: list[float]
    keys: list[bytes]
    servers: list[bytes]
    sizes: list[int]
    malformed: list[bool]
    payload: np.ndarray
    length: np.ndarray
    source: np.ndarray
    address_length: np.ndarray
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
        """Decide the records starting at ``offsets`` in ``buffer`` (PADDING bytes after)."""
        count = offsets.size
        raw_rows = sliding_window_view(buffer, ROW)[offsets]
        rows = raw_rows.view(self.frame).ravel()
        caplen = rows["caplen"].astype(np.int64)
        ethertype = np.where(caplen >= 14, rows["ethertype"], 0)
        kind = np.full(count, NONE, np.int8)

        ipv4 = (ethertype == 0x0800) & (rows["version_ihl"] == 0x45) & (caplen >= 34)
        fragment = ipv4 & (rows["fragment4"] & 0x3FFF != 0)
        ipv4 &= ~fragment
        total4 = rows["total4"].astype(np.int64)
        whole4 = ipv4 & (total4 >= 20) & (14 + total4 <= caplen)
        ipv6 = (ethertype == 0x86DD) & (caplen >= 54)
        payload6 = rows["payload6"].astype(np.int64)
        whole6 = ipv6 & (payload6 > 0) & (54 + payload6 <= caplen)
        not_ip = ((ethertype != 0x0800) & (ethertype != 0x86DD) & ~np.isin(ethertype, _VLANS)) | (
            (ethertype == 0x86DD) & (caplen < 54)
        )
        # IPv4 other than the plain shape, VLAN tags, IPv6 whose extent is odd: generic
        kind[~(whole4 | whole6 | fragment | not_ip)] = GENERIC

        protocol = np.where(whole4, rows["protocol4"], np.where(whole6, rows["next6"], 255))
        segment = np.where(whole4, total4 - 20, payload6)
        transport = np.where(whole4, 34, 54)
        kind[(whole4 | whole6) & np.isin(protocol, (1, 58, *_IPV6_EXTENSIONS))] = GENERIC
        sport = np.where(whole4, rows["sport4"], rows["sport6"]).astype(np.int64)
        dport = np.where(whole4, rows["dport4"], rows["dport6"]).astype(np.int64)
        address_length = np.where(whole4, 4, 16)
        source = offsets + 16 + np.where(whole4, 26, 22)

        # UDP: the payload as _transport cuts it
        udp = (whole4 | whole6) & (protocol == 17) & (segment > 8)
        udp_length = np.where(whole4, rows["ulen4"], rows["ulen6"]).astype(np.int64)
        length = np.where(udp_length >= 8, np.minimum(udp_length, segment), segment) - 8
        start = transport + 8
        # TCP: one whole STUN message in a segment that ends the connection, or no payload
        tcp = (whole4 | whole6) & (protocol == 6) & (segment >= 20)
        offset_words = np.where(whole4, rows["doff4"], rows["doff6"]).astype(np.int64) >> 4
        flags = np.where(whole4, rows["flags4"], rows["flags6"])
        tcp_length = np.maximum(segment - offset_words * 4, 0)
        length = np.where(tcp, tcp_length, np.where(udp, length, 0))
        start = np.where(tcp, transport + offset_words * 4, start)
        payload = offsets + 16 + start

        carrying = (udp | tcp) & (length > 0)
        kind[tcp & (length == 0)] = TCP_EMPTY
        header = sliding_window_view(buffer, 20)[payload].view(_STUN_HEADER).ravel()
        first = buffer[payload]
        top = first & 0xC0
        msg_type = header["type"].astype(np.int64)
        msg_length = header["length"].astype(np.int64)
        cookie = (length >= 8) & (header["cookie"] == proto.MAGIC_COOKIE)
        on_port = (sport == STUN_PORT) | (dport == STUN_PORT)
        exact = (length >= 20) & (msg_length & 3 == 0) & (20 + msg_length == length)
        classic_type = _CLASSIC_TYPES[msg_type]

        udp &= length > 0
        off_port = udp & ~on_port
        # off port 3478: the heuristic, or state (TURN flows) the generic code keeps
        stun = off_port & (top == 0) & cookie & exact
        kind[off_port & (top == 0) & ~cookie & exact & classic_type] = GENERIC
        kind[off_port & (top == 0x40)] = GENERIC
        # on port 3478: codec.classify
        on = udp & on_port
        channel = on & (top == 0x40) & (length >= 4) & (4 + msg_length <= length)
        truncated = on & (top == 0) & (length < 20)
        classic = on & (top == 0) & (length >= 20) & ~cookie & classic_type
        stun |= on & (top == 0) & (length >= 20) & cookie
        message = stun | classic
        # over TCP only a lone message with the cookie that FIN or RST closes
        tcp_message = tcp & carrying & (top == 0) & cookie & exact & (flags & 0x05 != 0)
        kind[tcp & carrying & ~tcp_message] = GENERIC

        ok = exact.copy()
        checked = (message | tcp_message) & exact
        verdict, undecided = self._well_formed(buffer, payload[checked], length[checked])
        ok[checked] = verdict
        kind[np.flatnonzero(checked)[undecided]] = GENERIC
        binds = (msg_type & 0xFEEF) == _CHANNEL_BIND
        kind[message & binds] = GENERIC

        cls = (msg_type >> 4) & 1 | (msg_type >> 7) & 2
        requests = (message | tcp_message) & (cls == 0)
        indications = (message | tcp_message) & (cls == 1)
        responses = (message | tcp_message) & (cls >= 2)
        if self.all_messages:
            kind[(requests | indications) & (kind == NONE)] = GENERIC
            kind[tcp_message & (requests | indications)] = GENERIC
        undecided_kind = kind == NONE
        kind[undecided_kind & message & requests] = REQUEST
        kind[undecided_kind & message & responses] = RESPONSE
        for selected, event in (
            (requests, TCP_REQUEST),
            (responses, TCP_RESPONSE),
            (indications, TCP_INDICATION),
        ):
            kind[undecided_kind & tcp_message & selected] = event

        fast = kind == NONE
        udp_counted = fast & (message | channel | truncated)
        counts = {
            "frames": int(np.count_nonzero(fast)),
            "not_ip": int(np.count_nonzero(fast & not_ip)),
            "fragments": int(np.count_nonzero(fast & fragment)),
            "udp_messages": int(np.count_nonzero(udp_counted)),
            "channel_data": int(np.count_nonzero(fast & channel)),
            "malformed": int(np.count_nonzero(fast & truncated))
            + int(np.count_nonzero(fast & message & ~ok)),
            "classic_messages": int(np.count_nonzero(fast & classic)),
            "indications": int(np.count_nonzero(fast & message & indications)),
        }
        for name, event in (("requests", REQUEST), ("responses", RESPONSE)):
            counts[name] = int(np.count_nonzero(kind == event))
            counts["frames"] += counts[name]
            counts["udp_messages"] += counts[name]
            counts["malformed"] += int(np.count_nonzero((kind == event) & ~ok))
        counts["classic_messages"] += int(np.count_nonzero((kind >= REQUEST) & classic))

        events = np.flatnonzero(kind > NONE)
        event_kind = kind[events]
        keys, servers = self._keys(
            raw_rows[events],
            sliding_window_view(buffer, 16)[payload[events] + 4],
            classic[events],
            whole4[events],
            np.isin(event_kind, (TCP_REQUEST, TCP_RESPONSE, TCP_INDICATION, TCP_EMPTY)),
            np.isin(event_kind, (REQUEST, TCP_REQUEST)),
        )
        return Batch(
            counts,
            event_kind.tolist(),
            events.tolist(),
            self.times(rows[events]).tolist(),
            keys,
            servers,
            np.minimum(20 + msg_length[events], length[events]).tolist(),
            (~ok[events]).tolist(),
            payload,
            length,
            source,
            address_length,
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
        at = np.full(start.size, 20, np.int64)
        active = np.flatnonzero(at < end)
        for _ in range(MAX_ATTRIBUTES):
            if not active.size:
                break
            offset = at[active]
            limit = end[active]
            where = start[active] + offset
            code = (buffer[where].astype(np.int64) << 8) | buffer[where + 1]
            size = (buffer[where + 2].astype(np.int64) << 8) | buffer[where + 3]
            rule = _RULE[code]
            family = buffer[where + 5]
            good = (
                (offset + 4 <= limit)
                & (offset + 4 + size <= limit)
                & (
                    (rule == _ANY)
                    | ((rule == _FIXED) & ((size == _FIRST[code]) | (size == _SECOND[code])))
                    | (
                        (rule == _ADDRESS)
                        & (((size == 8) & (family == 1)) | ((size == 20) & (family == 2)))
                    )
                    | ((rule == _MINIMUM) & (size >= _FIRST[code]))
                    | ((rule == _HMAC_SHA256) & (size >= 16) & (size <= 32) & (size % 4 == 0))
                    | ((rule == _EVEN) & (size % 2 == 0))
                )
            )
            complex_ = (rule == _COMPLEX) & (offset + 4 + size <= limit)
            verdict[active[~good & ~complex_]] = False
            undecided[active[complex_]] = True
            at[active] = offset + 4 + ((size + 3) & ~3)
            going = good & (at[active] < limit)
            active = active[going]
        undecided[active] = True
        return verdict, undecided

    def _keys(
        self,
        rows: np.ndarray,
        ident: np.ndarray,
        classic: np.ndarray,
        ipv4: np.ndarray,
        tcp: np.ndarray,
        request: np.ndarray,
    ) -> tuple[list[bytes], list[bytes]]:
        """``pair_key`` and ``server_key`` of each event, gathered as byte rows: the record's
        first ROW bytes, then the 16 bytes after a STUN type and length, then constants."""
        count = rows.shape[0]
        table = np.empty((count, _TABLE), np.uint8)
        table[:, :ROW] = rows
        table[:, _IDENT : _IDENT + 16] = ident
        table[:, _MARKER] = tcp | (classic << 1)
        table[:, _FAMILY] = np.where(ipv4, 4, 16)
        table[:, _ZERO] = 0
        table[:, _TCP] = tcp
        variant = (ipv4.astype(np.int64) << 2) | (request.astype(np.int64) << 1) | classic
        keys = _gather(table, variant, _KEY_LAYOUT)
        servers = _gather(table, ipv4.astype(np.int64), _SERVER_LAYOUT)
        return (
            keys.view(np.dtype((np.void, 54))).ravel().tolist(),
            servers.view(np.dtype((np.void, 20))).ravel().tolist(),
        )


def _gather(table: np.ndarray, variant: np.ndarray, layouts: np.ndarray) -> np.ndarray:
    """Row i is ``table[i, layouts[variant[i]]]`` (grouped by variant: much faster)."""
    out = np.empty((table.shape[0], layouts.shape[1]), np.uint8)
    for number, layout in enumerate(layouts):
        selected = np.flatnonzero(variant == number)
        if selected.size:
            out[selected] = table[selected][:, layout]
    return out


# Columns of the table _keys gathers from, and the layouts of the keys, per variant.
_IDENT, _MARKER, _FAMILY, _ZERO, _TCP = ROW, ROW + 16, ROW + 17, ROW + 18, ROW + 19
_TABLE = ROW + 20


def _layouts() -> tuple[np.ndarray, np.ndarray]:
    def address(ipv4: bool, source: bool) -> list[int]:
        if ipv4:
            first = 16 + (26 if source else 30)
            return [*range(first, first + 4)] + [_ZERO] * 12
        first = 16 + (22 if source else 38)
        return list(range(first, first + 16))

    def port(ipv4: bool, source: bool) -> list[int]:
        first = 16 + (34 if ipv4 else 54) + (0 if source else 2)
        return [first, first + 1]

    keys = np.zeros((8, 54), np.int64)
    servers = np.zeros((2, 20), np.int64)
    for ipv4 in (False, True):
        servers[int(ipv4)] = [_TCP, _FAMILY, *address(ipv4, True), *port(ipv4, True)]
        for request in (False, True):
            for classic in (False, True):
                ident = (
                    list(range(_IDENT, _IDENT + 16))
                    if classic
                    else [*range(_IDENT + 4, _IDENT + 16)] + [_ZERO] * 4
                )
                client = address(ipv4, request) + port(ipv4, request)
                server = address(ipv4, not request) + port(ipv4, not request)
                variant = int(ipv4) << 2 | int(request) << 1 | int(classic)
                keys[variant] = [_MARKER, _FAMILY, *ident, *client, *server]
    return keys, servers


_KEY_LAYOUT, _SERVER_LAYOUT = _layouts()
