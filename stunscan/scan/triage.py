"""What each frame of a captured batch is, decided for the whole batch at once with numpy.

The sniffer's per-frame code (``sniffer.dissect`` and ``Validator.judge``) costs tens of
microseconds a frame in CPython, which caps a scan at a few tens of thousands of answers a
second. Here the same decisions are made on arrays, for the frames of the shape nearly
every answer has (Ethernet, then IPv4 without options or IPv6 without extension headers,
then UDP): the payload's extent as ``dissect`` cuts it, the magic cookie, the keyed
transaction ID (recomputed for the whole batch with one AES call per address family, and
again per other scanned port for the IDs that do not match: a server answering from
another port), what ``codec.classify`` calls the payload, and the message class.

Every other frame (ICMP, IPv4 options, a frame cut before its UDP header...) is left to the
per-frame code, in capture order. For the report's zero-ID probe the source must be a
target: that is asked of the target space one answer at a time. Nothing is decided
differently:
``tests/test_scan_triage.py`` runs both on the same frames, hostile ones included, and
compares every counter and row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stunscan import protocol as proto
from stunscan.csvlines import word16
from stunscan.scan.targets import Targets
from stunscan.scan.txid import TransactionKey

GENERIC, NOT_STUN, BAD_ID, ECHOED, ANSWER = range(5)
"""Verdicts. GENERIC: the per-frame code decides. ANSWER: a response carrying our ID from
its own source (or, for the report's zero-ID probe, from a target): still to be
de-duplicated."""
ROW = 96
"""Bytes read from each frame: through an IPv6 answer's transaction ID (82)."""
_V4_UDP, _V6_UDP = 34, 54
SOURCE4, SOURCE6 = slice(26, 30), slice(22, 38)
"""Where an IPv4 (no options) or IPv6 frame has its source address."""
_FRAME = np.dtype(
    {
        "names": ["ethertype", "version_ihl", "protocol4", "next6", "length4", "length6"],
        "formats": [">u2", "u1", "u1", "u1", ">u2", ">u2"],
        "offsets": [12, 14, 23, 20, _V4_UDP + 4, _V6_UDP + 4],
        "itemsize": ROW,
    }
)
_CLASSIC_TYPES = np.zeros(65536, bool)
_CLASSIC_TYPES[list(proto.CLASSIC_MESSAGE_TYPES)] = True
COOKIE = np.frombuffer(proto.MAGIC_COOKIE_BYTES, np.uint8)


@dataclass(slots=True)
class Decisions:
    """Per frame of a batch: the verdict and, for the frames judged here, where the UDP
    payload is (offset into the frame, size), the source port, the port the ID is for and
    the probe number."""

    verdict: np.ndarray
    version: np.ndarray
    payload: np.ndarray
    size: np.ndarray
    sport: np.ndarray
    probed: np.ndarray
    probe: np.ndarray
    server4: np.ndarray
    """For IPv4 frames, ``sniffer.server_number`` of (source, probed port); 0 for IPv6."""


class Triage:
    """Batch judgement for one scan: its key, its ports, keyed or not."""

    def __init__(
        self,
        key: TransactionKey,
        keyed: bool,
        ports: tuple[int, ...],
        other_ports: bool,
        contains: Callable[[int, int], bool],
    ) -> None:
        self.key = key
        self.keyed = keyed
        self.ports = ports
        self.other_ports = other_ports
        """Whether an ID that fails for its source port is tried for the scanned ports (the
        one port of a single-port scan too: the answer came from another)."""
        self.contains = contains
        """Whether (version, address as an integer) is a target: ``TargetSpace.contains``."""

    def decide(self, buffer: np.ndarray, starts: np.ndarray, captured: np.ndarray) -> Decisions:
        """Judge the frames at ``starts`` in ``buffer`` (``captured`` bytes each; ROW bytes
        must be readable from every start)."""
        rows = sliding_window_view(buffer, ROW)[starts]
        head = rows.view(_FRAME).ravel()
        captured = captured.astype(np.int64)
        # dissect: Ethernet, IPv4 (20-byte header) or IPv6, then UDP
        ethertype = head["ethertype"]
        v4 = (ethertype == 0x0800) & (head["version_ihl"] == 0x45) & (head["protocol4"] == 17)
        v6 = (ethertype == 0x86DD) & (head["next6"] == 17)
        udp = np.where(v4, _V4_UDP, _V6_UDP)
        here = (v4 | v6) & (captured >= udp + 8)
        version = np.where(v4, 4, 6).astype(np.uint8)
        sport = word16(rows, udp)
        length = np.where(v4, head["length4"], head["length6"]).astype(np.int64)
        # payload = frame[udp + 8 : udp + max(length, 8)], as the slice clips it
        payload = udp + 8
        size = np.clip(np.minimum(udp + np.maximum(length, 8), captured) - payload, 0, None)
        verdict = np.full(len(starts), GENERIC, np.int8)
        verdict[here] = NOT_STUN
        # Validator.judge: at least a header; the cookie unless classic; then the ID
        live = here & (size >= proto.HEADER_SIZE)
        cookie = _cookie(rows, payload + 4)
        id_size = self.key.size
        if id_size == 16:
            ident = _window(rows, payload + 4, 16)
        else:
            live &= cookie
            ident = _window(rows, payload + 8, 12)
        probe = ident[:, -1].astype(np.int64)
        probed = sport.copy()
        if self.keyed:
            valid = self._validate(live, version, rows, sport, probe, ident, probed)
        else:
            valid = live & ~ident.any(axis=1)
            for index in np.flatnonzero(valid).tolist():
                family = int(version[index])
                source = _source(rows[index], family)
                valid[index] = self.contains(family, int.from_bytes(source, "big"))
            if len(self.ports) == 1:  # an answer from elsewhere is for the one port probed
                probed[sport != self.ports[0]] = self.ports[0]
        verdict[live & ~valid] = BAD_ID
        # codec.decode(...).is_stun, then the class: a response, or our request echoed
        first = rows[np.arange(len(rows)), payload]
        msg_type = word16(rows, payload)
        stun = (first & 0xC0 == 0) & (cookie | _CLASSIC_TYPES[msg_type])
        responds = (((msg_type >> 7) & 2) | ((msg_type >> 4) & 1)) >= 2  # success or error
        verdict[valid & ~stun] = NOT_STUN
        verdict[valid & stun & ~responds] = ECHOED
        verdict[valid & stun & responds] = ANSWER
        source4 = np.ascontiguousarray(rows[:, SOURCE4]).view(">u4").ravel().astype(np.int64)
        server4 = np.where(v4, source4 << 16 | probed, 0)
        return Decisions(verdict, version, payload, size, sport, probed, probe, server4)

    def _validate(
        self,
        live: np.ndarray,
        version: np.ndarray,
        rows: np.ndarray,
        sport: np.ndarray,
        probe: np.ndarray,
        ident: np.ndarray,
        probed: np.ndarray,
    ) -> np.ndarray:
        """Which live frames carry the MAC of their own source and port, or (then
        ``probed`` is changed) of their source and another scanned port, the first in the
        scan's port order, as ``Validator.judge`` tries them."""
        valid = np.zeros(len(live), bool)
        for family in (4, 6):
            chosen = np.flatnonzero(live & (version == family))
            if not chosen.size:
                continue
            high, low = _address(rows[chosen], family)
            ports = sport[chosen]
            matched = self._matches(family, high, low, ports, probe[chosen], ident[chosen])
            if self.other_ports:
                for other in self.ports:
                    if matched.all():
                        break
                    left = np.flatnonzero(~matched & (ports != other))
                    if not left.size:  # the rest came from this very port: try the next
                        continue
                    again = self._matches(
                        family, high[left], low[left], np.full(left.size, other),
                        probe[chosen[left]], ident[chosen[left]],
                    )  # fmt: skip
                    matched[left[again]] = True
                    probed[chosen[left[again]]] = other
            valid[chosen] = matched
        return valid

    def _matches(
        self,
        family: int,
        high: np.ndarray,
        low: np.ndarray,
        ports: np.ndarray,
        probe: np.ndarray,
        ident: np.ndarray,
    ) -> np.ndarray:
        targets = Targets(np.full(len(low), family, np.uint8), high, low, ports.astype(np.uint16))
        expected = self.key.transaction_ids(family, targets, probe.astype(np.uint8))
        return (expected == ident).all(axis=1)


def _window(rows: np.ndarray, offset: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes at a per-row offset, as a (rows, width) array."""
    return rows[np.arange(len(rows))[:, None], offset[:, None] + np.arange(width)]


def _cookie(rows: np.ndarray, offset: np.ndarray) -> np.ndarray:
    return (_window(rows, offset, 4) == COOKIE).all(axis=1)


def _source(row: np.ndarray, version: int) -> bytes:
    return bytes(row[SOURCE4 if version == 4 else SOURCE6])


def _address(rows: np.ndarray, family: int) -> tuple[np.ndarray, np.ndarray]:
    """The source addresses of one family's rows as (high, low) 64-bit halves."""
    if family == 4:
        low = np.ascontiguousarray(rows[:, SOURCE4]).view(">u4").ravel().astype(np.uint64)
        return np.zeros(len(rows), np.uint64), low
    halves = np.ascontiguousarray(rows[:, SOURCE6]).view(">u8").reshape(len(rows), 2)
    return halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64)
