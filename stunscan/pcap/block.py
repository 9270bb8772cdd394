"""Many sightings as a few arrays: how the fast path hands over the servers it finds.

On a scan's capture the fast path finds tens of thousands of servers, and a Sighting
object apiece (bytes cut out of the buffer, an object, a pickle per object for the
parallel workers' pipes) cost more than finding them. A :class:`SightingBlock` holds a
run's first responses of new servers as arrays: capture times, transport, the pairing
keys (which carry the addresses and ports, see ``stunscan.pcap.analyzer.pair_key``), the
requests' sizes, the moved flags and the messages' bytes end to end. It pickles as a few
buffers; :meth:`SightingBlock.sightings` makes the objects only where they are wanted
(``stunscan.pcap.parallel`` first drops the servers another run reported).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stunscan import csvlines
from stunscan import protocol as proto
from stunscan.enrich.columns import EMPTY_COLUMNS
from stunscan.pcap.sighting import Sighting, ip_text

_KEY_BYTES = np.dtype((np.void, 64))
BULK_LINES = 512
"""Rows from which the block's CSV lines are made at once (``stunscan.csvlines`` costs a
few milliseconds whatever the count; ``csvrow.line`` about ten microseconds a row)."""
_SERVER_BYTES = np.dtype((np.void, 24))


@dataclass(slots=True)
class SightingBlock:
    """First responses of servers, in order (every one a server's first: ``first``)."""

    times: np.ndarray
    tcp: np.ndarray
    keys: np.ndarray
    """Rows of eight big-endian 64-bit words: the responses' pairing keys."""
    servers: np.ndarray
    """Rows of three words: the responders' server keys (``analyzer.server_key``)."""
    request_sizes: np.ndarray
    """-1 where unsolicited."""
    moved: np.ndarray
    data: bytes
    ends: np.ndarray
    """Where each message's bytes end in ``data`` (each starts where the one before ends)."""

    def __len__(self) -> int:
        return int(self.times.size)

    def __reduce__(self) -> tuple[type[SightingBlock], tuple[object, ...]]:
        return SightingBlock, (
            self.times,
            self.tcp,
            self.keys,
            self.servers,
            self.request_sizes,
            self.moved,
            self.data,
            self.ends,
        )

    def server_keys(self) -> list[bytes]:
        servers = np.ascontiguousarray(self.servers).view(_SERVER_BYTES)
        return servers.ravel().tolist()  # type: ignore[no-any-return]

    def pair_keys(self, rows: np.ndarray) -> list[bytes]:
        return np.ascontiguousarray(self.keys[rows]).view(_KEY_BYTES).ravel().tolist()  # type: ignore[no-any-return]

    def sightings(
        self, rows: np.ndarray | None = None, request_sizes: list[int | None] | None = None
    ) -> list[Sighting]:
        """The rows (all, or these indices in order) as the Sighting objects the
        per-message code makes, each with its CSV line where ``stunscan.csvlines`` can
        make it; ``request_sizes``: the rows' own, if the merge found some."""
        if rows is None:
            rows = np.arange(len(self))
        ends = self.ends[rows]
        starts = np.where(rows > 0, self.ends[np.maximum(rows - 1, 0)], 0)
        keys = self.pair_keys(rows)
        if request_sizes is None:
            request_sizes = [
                None if size < 0 else size for size in self.request_sizes[rows].tolist()
            ]
        times = self.times[rows].tolist()
        transports = ["tcp" if tcp else "udp" for tcp in self.tcp[rows].tolist()]
        data = self.data
        out = []
        for when, transport, key, size, moved, start, end in zip(
            times,
            transports,
            keys,
            request_sizes,
            self.moved[rows].tolist(),
            starts.tolist(),
            ends.tolist(),
            strict=True,
        ):
            length = key[35]  # (the key's address length byte)
            out.append(
                Sighting(
                    when,
                    transport,
                    data[start:end],
                    key[40 : 40 + length],
                    (key[56] << 8) | key[57],
                    key[16 : 16 + length],
                    (key[32] << 8) | key[33],
                    size,
                    key,
                    moved,
                    True,
                )
            )
        if len(out) < BULK_LINES:
            return out  # (emit_sighting makes each line with csvrow.line)
        heads = [f"{ip_text(s.src)},{s.transport},{s.sport}" for s in out]
        buffer = np.frombuffer(data + bytes(csvlines.PADDING), np.uint8)
        bases = [size or len(proto.REFERENCE_PROBE) for size in request_sizes]
        made = csvlines.lines(
            buffer, starts, ends - starts, times, heads, bases, enriched=EMPTY_COLUMNS, extent=True
        )
        for sighting, line in zip(out, made, strict=True):
            sighting.line = line
        return out


def gather(buffer: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The byte ranges (``starts``, ``lengths``) of ``buffer`` end to end, and where each
    ends: one gather, not a slice per range."""
    ends = np.cumsum(lengths, dtype=np.int64)
    total = int(ends[-1]) if ends.size else 0
    shift = np.repeat(starts.astype(np.int64) - (ends - lengths), lengths)
    return buffer[shift + np.arange(total)].tobytes(), ends


def expand(items: list[Sighting | SightingBlock]) -> list[Sighting]:
    """Blocks among sightings as their sightings, in order."""
    if not any(isinstance(item, SightingBlock) for item in items):
        return items  # type: ignore[return-value]
    out: list[Sighting] = []
    for item in items:
        if isinstance(item, SightingBlock):
            out.extend(item.sightings())
        else:
            out.append(item)
    return out
