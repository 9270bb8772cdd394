"""Feed a capture file to the :class:`~stunscan.pcap.analyzer.Analyzer`, fast where it can be.

A classic pcap of Ethernet frames is read in segments: ``recordwalk`` finds the records,
``fastpath`` decides batches of them with numpy, and the loop here runs, in packet order,
only what needs Python: pairing requests with responses, the records of servers seen for
the first time, and the analyser's own per-packet code for every packet the fast path left
to it. Anything else (pcapng, other link types) and whatever follows a damaged or truncated
record goes through ``CaptureReader`` and ``Analyzer.feed`` as before, so the problem
reported is the same too. ``tests/test_fast_pcap.py`` holds both ways to the same output.
"""

from __future__ import annotations

import struct
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from stunscan.capture import fastpath
from stunscan.capture.fastpath import (
    GENERIC,
    PAIR,
    REQUEST,
    RESPONSE,
    TCP_EMPTY,
    TCP_INDICATION,
    TCP_REQUEST,
    Batch,
    Classifier,
)
from stunscan.capture.files import PCAP_MAGICS, CaptureReader, Frame
from stunscan.capture.recordwalk import CORRUPT, REACHED_LIMIT, RecordWalker
from stunscan.pcap.analyzer import CLIENT_KEY, MAX_PENDING, PENDING_TIMEOUT, Analyzer
from stunscan.pcap.sighting import Sighting

SEGMENT = 2 << 20
"""Bytes read at a time: memory stays flat whatever the capture's size."""
BATCH = 16384
"""Records decided at a time (numpy's temporaries are a few hundred bytes per record)."""
ETHERNET = 1


def fast_enabled(head: bytes) -> bool:
    """Whether a file starting with these 24 bytes takes the fast path."""
    if len(head) < 24 or head[:4] not in PCAP_MAGICS:
        return False
    order = PCAP_MAGICS[head[:4]][0]
    return struct.unpack(order + "I", head[20:24])[0] & 0x0FFFFFFF == ETHERNET


class PcapFeed:
    """Iterate over what a capture (or the run of it between two record offsets, see
    ``stunscan.pcap.parallel``) adds to ``analyzer``: lists of sightings, in order, each to
    become a record; then :attr:`problem` says why reading stopped early, if it did."""

    def __init__(
        self,
        path: str | Path,
        analyzer: Analyzer,
        start: int | None = None,
        end: int | None = None,
        *,
        fast: bool = True,
    ) -> None:
        self.path = Path(path)
        self.analyzer = analyzer
        self.start = start
        self.end = end
        self.fast = fast
        self.problem: str | None = None
        self.frames_read = 0

    def __iter__(self) -> Iterator[list[Sighting]]:
        position = self.start
        if self.fast:
            try:
                with self.path.open("rb") as handle:
                    head = handle.read(24)
            except OSError:
                head = b""  # CaptureReader says why
            if fast_enabled(head):
                position = yield from self._fast(head)
        reader = CaptureReader(self.path, position, self.end)
        reader.frames_read = self.frames_read
        feed = self.analyzer.feed_frame
        drain = self.analyzer.drain
        for frame in reader:
            feed(frame)
            out = drain()
            if out:
                yield out
        self.problem = reader.problem
        self.frames_read = reader.frames_read

    def _fast(self, head: bytes) -> Generator[list[Sighting], None, int]:
        """Read whole records segment by segment; return where the generic reader goes on."""
        order, resolution = PCAP_MAGICS[head[:4]]
        walker = RecordWalker(order, resolution)
        classifier = Classifier(order, resolution, self.analyzer.all_messages)
        buffer = np.zeros(SEGMENT + fastpath.PADDING, np.uint8)
        view = memoryview(buffer)  # type: ignore[arg-type]
        position = 24 if self.start is None else self.start
        with self.path.open("rb") as handle:
            end = handle.seek(0, 2) if self.end is None else self.end
            while position < end:
                handle.seek(position)
                size = handle.readinto(view[:SEGMENT])
                buffer[size : size + fastpath.PADDING] = 0
                walk = walker.walk(buffer, size, end - position)
                for first in range(0, walk.offsets.size, BATCH):
                    batch = classifier.classify(buffer, walk.offsets[first : first + BATCH])
                    records = self._run(batch, buffer, order)
                    del batch  # not alive while the next is made: memory stays flat
                    if records:
                        yield records
                    del records
                self.frames_read += walk.offsets.size
                position += walk.stop
                if walk.reason == CORRUPT or size < SEGMENT or not walk.offsets.size:
                    break  # the generic reader reports the damage or the truncation
                if walk.reason == REACHED_LIMIT:
                    break
        return position

    def _run(self, batch: Batch, buffer: np.ndarray, order: str) -> list[Sighting]:
        """The events of a batch, in packet order, through the analyser's pairing."""
        analyzer = self.analyzer
        stats = analyzer.stats
        for name, count in batch.counts.items():
            setattr(stats, name, getattr(stats, name) + count)
        request = analyzer._request
        pair = analyzer._pair
        servers = analyzer.tally.servers
        tcp_flows = analyzer.tcp_flows
        all_messages = analyzer.all_messages
        raw = memoryview(buffer)  # type: ignore[arg-type]
        byteorder: Literal["little", "big"] = "little" if order == "<" else "big"
        pending = analyzer.pending
        by_client = analyzer.pending_by_client
        paired = 0
        stale = True
        oldest: float | None = None
        full = False
        for kind, packet, when, key, server, size, bad in zip(
            batch.types,
            batch.packets,
            batch.times,
            batch.keys,
            batch.servers,
            batch.sizes,
            batch.malformed,
            strict=True,
        ):
            if kind == PAIR:
                # Analyzer._request then _pair, when the ageing would remove nothing and
                # the key and client are new: the request is added and taken back, paired,
                # and the tables end as they were (so the view of them below stays true)
                if stale:
                    oldest = next(iter(pending.values()))[1] if pending else None
                    full = len(pending) >= MAX_PENDING
                    stale = False
                if (
                    not full
                    and (oldest is None or oldest > when - PENDING_TIMEOUT)
                    and key not in pending
                    and not (by_client and key[:CLIENT_KEY] in by_client)
                ):
                    paired += 1
                    if all_messages or server not in servers:
                        moment = float(batch.times_of_packets[packet])
                        self._emit(batch, raw, packet, moment, "udp", size, key, server, False)
                    continue
                request(when, key, size)  # and the response below
                kind = RESPONSE
                when = float(batch.times_of_packets[packet])
            stale = True
            if kind == REQUEST:
                # Analyzer._request, its ageing only checked here (it runs when due)
                if pending and (
                    len(pending) >= MAX_PENDING
                    or not next(iter(pending.values()))[1] > when - PENDING_TIMEOUT
                ):
                    request(when, key, size)
                else:
                    pending[key] = (size, when)
                    by_client[key[:CLIENT_KEY]] = key
                continue
            if kind == RESPONSE:
                # Analyzer._pair for the usual case, the request found under its own key
                asked = pending.pop(key, None)
                if asked is None:
                    request_size, moved = pair(key)
                else:
                    paired += 1
                    request_size, moved = asked[0], False
                    client = key[:CLIENT_KEY]
                    if by_client.get(client) == key:
                        del by_client[client]
                if all_messages or server not in servers:
                    self._emit(batch, raw, packet, when, "udp", request_size, key, server, moved)
                continue
            if kind == GENERIC or tcp_flows:
                at = int(batch.offsets[packet])
                caplen = int.from_bytes(raw[at + 8 : at + 12], byteorder)
                analyzer.feed_frame(
                    Frame(when, ETHERNET, raw[at + 16 : at + 16 + caplen].tobytes())
                )
                continue
            # TCP with no flow tracked: nothing stays behind (see fastpath)
            stats.frames += 1
            if kind == TCP_EMPTY:
                continue
            stats.tcp_messages += 1
            stats.malformed += bad
            if kind == TCP_REQUEST:
                stats.requests += 1
                request(when, key, size)
            elif kind == TCP_INDICATION:
                stats.indications += 1
            else:
                stats.responses += 1
                request_size, moved = pair(key)
                if all_messages or server not in servers:
                    self._emit(batch, raw, packet, when, "tcp", request_size, key, server, moved)
        stats.paired += paired
        return analyzer.drain()

    def _emit(
        self,
        batch: Batch,
        raw: memoryview,
        packet: int,
        when: float,
        transport: str,
        request_size: int | None,
        key: bytes,
        server: bytes,
        moved: bool,
    ) -> None:
        payload = int(batch.payload[packet])
        end = payload + int(batch.length[packet])
        ipv4 = bool(batch.ipv4[packet])
        source = int(batch.offsets[packet]) + 16 + (26 if ipv4 else 22)
        length = 4 if ipv4 else 16
        sighting = self.analyzer._emit(
            when,
            transport,
            raw[payload:end].tobytes(),
            raw[source : source + length].tobytes(),
            int(batch.sport[packet]),
            raw[source + length : source + 2 * length].tobytes(),
            int(batch.dport[packet]),
            request_size,
            key,
        )
        self.analyzer._report(server, sighting, moved)
