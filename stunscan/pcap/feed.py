"""Feed a capture file to the :class:`~stunscan.pcap.analyzer.Analyzer`, fast where it can be.

A classic pcap of Ethernet frames is read in segments: ``recordwalk`` finds the records,
``fastpath`` decides batches of them with numpy, ``pairing`` pairs the requests and
responses between two generic events a run at a time (the pending requests held in its
arrays meanwhile), ``known`` skips the responses of servers already reported, and the
first responses of new servers leave as blocks of arrays (``block``). The loop here runs,
in packet order, only what needs Python: the per-message pairing for the runs
``pairing`` leaves to it, and the analyser's own per-packet code for every packet the
fast path left to it. Anything else (pcapng, other
link types) and whatever follows a damaged or truncated record goes through
``CaptureReader`` and ``Analyzer.feed`` as before, so the problem reported is the same too.
``tests/test_fast_pcap.py`` holds both ways to the same output.
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
    OVER_TCP,
    REQUEST,
    RESPONSE,
    TCP_EMPTY,
    TCP_INDICATION,
    TCP_REQUEST,
    TCP_RESPONSE,
    Batch,
    Classifier,
)
from stunscan.capture.files import PCAP_MAGICS, CaptureReader, Frame
from stunscan.capture.recordwalk import CORRUPT, REACHED_LIMIT, RecordWalker
from stunscan.pcap.analyzer import Analyzer
from stunscan.pcap.block import SightingBlock, expand, gather
from stunscan.pcap.known import KnownServers
from stunscan.pcap.pairing import KEY_BYTES, SERVER_BYTES, Pairer
from stunscan.pcap.sighting import Sighting

SEGMENT = 2 << 20
"""Bytes read at a time: memory stays flat whatever the capture's size."""
BATCH = 16384
"""Records decided at a time (numpy's temporaries are a few hundred bytes per record)."""
ETHERNET = 1
SHORT_RUN = 24
"""Runs of fewer events go one at a time: numpy's fixed cost would outweigh it."""


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
        keep_table: bool = False,
    ) -> None:
        """``keep_table``: the pending requests may stay in the pairer's table when the
        fast path read to the end (``stunscan.pcap.parallel`` packs them from there);
        otherwise they are back in the analyser's dicts when reading ends."""
        self.path = Path(path)
        self.keep_table = keep_table
        self.analyzer = analyzer
        self.start = start
        self.end = end
        self.fast = fast
        self.problem: str | None = None
        self.frames_read = 0
        self.pairer = Pairer(analyzer)
        self.known = KnownServers()

    def __iter__(self) -> Iterator[list[Sighting]]:
        for items in self.items():
            yield expand(items)

    def items(self) -> Iterator[list[Sighting | SightingBlock]]:
        """The same, the fast path's finds left as blocks (``stunscan.pcap.block``)."""
        position = self.start
        if self.fast:
            try:
                with self.path.open("rb") as handle:
                    head = handle.read(24)
            except OSError:
                head = b""  # CaptureReader says why
            if fast_enabled(head):
                try:
                    position = yield from self._fast(head)
                except BaseException:
                    self.pairer.release()
                    raise
                if not (self.keep_table and position >= self._size()):
                    self.pairer.release()  # (the per-message code below reads the dicts)
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

    def _size(self) -> int:
        """Where this run's records end."""
        return self.end if self.end is not None else self.path.stat().st_size

    def _fast(self, head: bytes) -> Generator[list[Sighting | SightingBlock], None, int]:
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

    def _run(self, batch: Batch, buffer: np.ndarray, order: str) -> list[Sighting | SightingBlock]:
        """The events of a batch, in packet order, through the analyser's pairing: runs of
        requests and responses a run at a time (``stunscan.pcap.pairing``), the generic
        events between them one at a time, as the analyser's own code."""
        analyzer = self.analyzer
        stats = analyzer.stats
        for name, count in batch.counts.items():
            setattr(stats, name, getattr(stats, name) + count)
        self.pairer.saw(batch.times)
        raw = memoryview(buffer)  # type: ignore[arg-type]
        byteorder: Literal["little", "big"] = "little" if order == "<" else "big"
        start = 0
        for stop in [*np.flatnonzero(batch.types == GENERIC).tolist(), batch.types.size]:
            if stop > start and (
                stop - start < SHORT_RUN or not self._pair_run(batch, buffer, raw, start, stop)
            ):
                self.pairer.release()
                self._events(batch, raw, byteorder, start, stop)
            if stop < batch.types.size:
                self.pairer.release()
                at = int(batch.offsets[batch.packets[stop]])
                caplen = int.from_bytes(raw[at + 8 : at + 12], byteorder)
                when = float(batch.times[batch.packets[stop]])
                frame = raw[at + 16 : at + 16 + caplen].tobytes()
                analyzer.feed_frame(Frame(when, ETHERNET, frame))
            start = stop + 1
        return analyzer.drain()

    def _pair_run(
        self, batch: Batch, buffer: np.ndarray, raw: memoryview, start: int, stop: int
    ) -> bool:
        """Events ``start:stop`` (no generic one) paired at once; False if they are not a
        run decided that way (nothing done then)."""
        analyzer = self.analyzer
        kinds = batch.types[start:stop]
        tcp = OVER_TCP[kinds]
        if analyzer.tcp_flows and tcp.any():
            return False  # TCP events go the generic way while a flow is tracked
        packets = batch.packets[start:stop]
        plan = self.pairer.plan(
            kinds, batch.keys[start:stop], batch.times[packets], batch.sizes[start:stop]
        )
        if plan is None:
            return False
        if tcp.any():
            stats = analyzer.stats
            carrying = kinds[tcp] != TCP_EMPTY
            stats.frames += int(np.count_nonzero(tcp))
            stats.tcp_messages += int(np.count_nonzero(carrying))
            stats.malformed += int(np.count_nonzero(batch.malformed[start:stop][tcp][carrying]))
            stats.requests += int(np.count_nonzero(kinds == TCP_REQUEST))
            stats.indications += int(np.count_nonzero(kinds == TCP_INDICATION))
            stats.responses += int(np.count_nonzero(kinds == TCP_RESPONSE))
        responses = plan.responses
        server_words = batch.servers[start:stop][responses].view(np.uint64).reshape(-1, 3)
        if analyzer.all_messages:  # every response is a record: one at a time
            servers = server_words.view(SERVER_BYTES).ravel().tolist()
            for index, server in enumerate(servers):
                event = start + int(responses[index])
                transport = "tcp" if kinds[responses[index]] == TCP_RESPONSE else "udp"
                packet = int(batch.packets[event])
                size = int(plan.request_sizes[index])
                self._emit(
                    batch,
                    raw,
                    packet,
                    float(batch.times[packet]),
                    transport,
                    None if size < 0 else size,
                    batch.keys[event : event + 1].view(KEY_BYTES)[0].tobytes(),
                    server,
                    bool(plan.moved[index]),
                )
            return True
        # only a server's first response is reported: the others are skipped at once
        candidates = np.flatnonzero(self.known.unknown(server_words))
        if not candidates.size:
            return True
        chosen = server_words[candidates]
        seen = analyzer.tally.servers
        new = []
        for index, server in enumerate(chosen.view(SERVER_BYTES).ravel().tolist()):
            if server not in seen:
                seen.add(server)
                new.append(index)
        self.known.add(chosen)  # (every one is in the tally now)
        if new:
            rows = candidates[new]
            events = start + responses[rows]
            packets = batch.packets[events]
            data, ends = gather(buffer, batch.payload[packets], batch.length[packets])
            block = SightingBlock(
                batch.times[packets],
                kinds[responses[rows]] == TCP_RESPONSE,
                batch.keys[events].view(np.uint64).reshape(-1, 8),
                server_words[rows],
                plan.request_sizes[rows],
                plan.moved[rows],
                data,
                ends,
            )
            analyzer.found_block(block)
        return True

    def _events(
        self,
        batch: Batch,
        raw: memoryview,
        byteorder: Literal["little", "big"],
        start: int,
        stop: int,
    ) -> None:
        """Events ``start:stop`` (no generic one) one at a time: ``Analyzer._request`` and
        ``_pair`` themselves, for the runs ``stunscan.pcap.pairing`` leaves alone."""
        analyzer = self.analyzer
        stats = analyzer.stats
        request = analyzer._request
        pair = analyzer._pair
        servers = analyzer.tally.servers
        all_messages = analyzer.all_messages
        packets = batch.packets[start:stop]
        for kind, packet, when, key, server, size, bad in zip(
            batch.types[start:stop].tolist(),
            packets.tolist(),
            batch.times[packets].tolist(),
            batch.keys[start:stop].view(KEY_BYTES).ravel().tolist(),
            batch.servers[start:stop].view(SERVER_BYTES).ravel().tolist(),
            batch.sizes[start:stop].tolist(),
            batch.malformed[start:stop].tolist(),
            strict=True,
        ):
            if kind == REQUEST:
                request(when, key, size)
                continue
            if kind == RESPONSE:
                request_size, moved = pair(key)
                if all_messages or server not in servers:
                    self._emit(batch, raw, packet, when, "udp", request_size, key, server, moved)
                continue
            if analyzer.tcp_flows:  # TCP while a flow is tracked: the generic way
                at = int(batch.offsets[packet])
                caplen = int.from_bytes(raw[at + 8 : at + 12], byteorder)
                frame = raw[at + 16 : at + 16 + caplen].tobytes()
                analyzer.feed_frame(Frame(when, ETHERNET, frame))
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
