"""Where the records of a classic pcap start, for a whole buffer at a time, at C speed.

Records are variable length, so the walk from one header to the next is sequential by
nature; in Python it costs about 0.35 us a record, a third of the time budget of
``stunscan pcap``. Here numpy walks many chains in lockstep instead: chain 0 starts at the
known first record, the others at offsets that look like record headers, spread over the
buffer. Each chain walks until it reaches the start of the next one. A guessed start is
trusted only when the chain before it, itself trusted, lands exactly on it, so the result is
the one a sequential walk gives whatever the bytes hold: a wrong guess costs another round,
never a wrong offset (``tests/test_fast_pcap.py`` compares the two on odd captures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stunscan.capture.files import MAX_RECORD

SPACING = 16384
"""Bytes between guessed chain starts: about 80 records of small packets per chain."""
WINDOW = 256
"""Bytes searched after each guess point for a plausible header."""
MAX_ROUNDS = 8
"""Rounds of re-walking after wrong guesses before walking the rest one chain at a time."""
REACHED_LIMIT, INCOMPLETE, CORRUPT = 0, 1, 2
"""Why a walk stopped: the next record starts at or after the limit; it does not fit in
the buffer (or its header does not); its length is beyond :data:`MAX_RECORD`."""


@dataclass(slots=True)
class Walk:
    """The record starts found (in order) and where and why the walk stopped."""

    offsets: np.ndarray
    stop: int
    reason: int


class RecordWalker:
    """Walks the records of one capture's buffers (``order`` '<' or '>' as in the file)."""

    def __init__(self, order: str, resolution: float) -> None:
        self.little = order == "<"
        self.fraction_limit = 1_000_000 if resolution > 1e-7 else 1_000_000_000
        self.header = np.dtype(
            {
                "names": ["seconds", "fraction", "caplen", "length"],
                "formats": [order + "u4"] * 4,
                "offsets": [0, 4, 8, 12],
                "itemsize": 16,
            }
        )
        self.caplen = np.dtype(order + "u4")

    def walk(self, buffer: np.ndarray, size: int, limit: int) -> Walk:
        """The records wholly inside ``buffer[:size]`` from offset 0 (a record start) on,
        stopping at the first that starts at or after ``limit``. ``buffer`` must have at
        least 16 readable bytes after ``size``."""
        if size < 16 or limit <= 0:
            return Walk(np.empty(0, np.int64), 0, INCOMPLETE if limit > 0 else REACHED_LIMIT)
        starts = self._guesses(buffer, size, min(limit, size))
        pieces: list[np.ndarray] = []
        for _ in range(MAX_ROUNDS):
            offsets, stop, reason, verified = self._lockstep(buffer, size, limit, starts)
            pieces.append(offsets)
            if verified:
                return Walk(np.concatenate(pieces), stop, reason)
            starts = np.concatenate(([stop], starts[starts > stop]))
        offsets, stop, reason = self._one_chain(buffer, size, limit, int(starts[0]))
        pieces.append(offsets)
        return Walk(np.concatenate(pieces), stop, reason)

    def _guesses(self, buffer: np.ndarray, size: int, end: int) -> np.ndarray:
        """Offset 0 and, after every SPACING bytes, the first offset whose header and the
        one it points to both look plausible (timestamps near the first record's)."""
        points = np.arange(SPACING, end - WINDOW, SPACING, dtype=np.int64)
        if not points.size:
            return np.zeros(1, np.int64)
        seconds = int(buffer[:16].view(self.header)[0]["seconds"])
        # a cheap sieve first: the top byte of the seconds, which packet bytes seldom match
        top = sliding_window_view(buffer, WINDOW)[points + (3 if self.little else 0)]
        near = np.abs(top.astype(np.int16) - (seconds >> 24)) <= 1
        rows, columns = np.nonzero(near)
        candidates = points[rows] + columns
        plausible = self._plausible(buffer, candidates, seconds)
        following = candidates + 16 + self._caplen(buffer, candidates)
        inside = plausible & (following + 16 <= size)
        plausible[inside] = self._plausible(buffer, following[inside], seconds)
        rows, candidates = rows[plausible], candidates[plausible]
        first = np.ones(candidates.size, bool)
        first[1:] = rows[1:] != rows[:-1]
        return np.concatenate(([0], candidates[first]))

    def _plausible(self, buffer: np.ndarray, at: np.ndarray, seconds: int) -> np.ndarray:
        rows = sliding_window_view(buffer, 16)[at].view(self.header).ravel()
        caplen = rows["caplen"]
        return (
            (caplen <= rows["length"])
            & (caplen <= MAX_RECORD)
            & (rows["fraction"] < self.fraction_limit)
            & (np.abs(rows["seconds"].astype(np.int64) - seconds) < 86400)
        )

    def _caplen(self, buffer: np.ndarray, at: np.ndarray) -> np.ndarray:
        words = np.lib.stride_tricks.as_strided(buffer, (buffer.size - 3, 4), (1, 1))
        return words[at + 8].view(self.caplen).ravel().astype(np.int64)

    def _lockstep(
        self, buffer: np.ndarray, size: int, limit: int, starts: np.ndarray
    ) -> tuple[np.ndarray, int, int, bool]:
        """Walk every chain until the next one's start; keep the trusted ones (a prefix).

        Returns their record offsets, where the trusted walk stopped and why, and whether
        every chain was trusted (False: the walk continues from ``stop`` in another round).
        """
        count = starts.size
        ends = np.zeros(count, np.int64)
        reasons = np.zeros(count, np.int64)
        # the active chains: their ids, positions and limits, kept aligned
        chain = np.arange(count, dtype=np.uint16 if count < 1 << 16 else np.int64)
        position = starts.astype(np.int64)
        limits = np.append(starts[1:], limit).astype(np.int64)
        found_at: list[np.ndarray] = []
        found_chain: list[np.ndarray] = []
        words = np.lib.stride_tricks.as_strided(buffer, (buffer.size - 3, 4), (1, 1))
        caplen_type = self.caplen
        while chain.size:
            caplen = words[position + 8].view(caplen_type).ravel().astype(np.int64)
            after = position + 16 + caplen
            whole = (after <= size) & (caplen <= MAX_RECORD)
            done = after >= limits
            if whole.all() and not done.any():
                found_at.append(position)
                found_chain.append(chain)
                position = after
                continue
            stopped = ~whole
            if stopped.any():
                ends[chain[stopped]] = position[stopped]
                corrupt = (position + 16 <= size) & (caplen > MAX_RECORD)
                reasons[chain[stopped]] = np.where(corrupt[stopped], CORRUPT, INCOMPLETE)
            found_at.append(position[whole])
            found_chain.append(chain[whole])
            done &= whole
            ends[chain[done]] = after[done]
            going = whole & ~done
            chain, position, limits = chain[going], after[going], limits[going]
        trusted = 1
        while (
            trusted < count
            and reasons[trusted - 1] == REACHED_LIMIT
            and ends[trusted - 1] == starts[trusted]
        ):
            trusted += 1
        chains = np.concatenate(found_chain)
        offsets = np.concatenate(found_at)
        if trusted < count:
            keep = chains < trusted
            chains, offsets = chains[keep], offsets[keep]
        offsets = offsets[np.argsort(chains, kind="stable")]
        last = trusted - 1
        verified = trusted == count or reasons[last] != REACHED_LIMIT
        return offsets, int(ends[last]), int(reasons[last]), verified

    def _one_chain(
        self, buffer: np.ndarray, size: int, limit: int, start: int
    ) -> tuple[np.ndarray, int, int]:
        """The plain sequential walk, for buffers that defeat the guesses round after round."""
        raw = memoryview(buffer)  # type: ignore[arg-type]
        byteorder: Literal["little", "big"] = "little" if self.little else "big"
        offsets: list[int] = []
        at = start
        while at < limit:
            if at + 16 > size:
                return np.array(offsets, np.int64), at, INCOMPLETE
            caplen = int.from_bytes(raw[at + 8 : at + 12], byteorder)
            if caplen > MAX_RECORD:
                return np.array(offsets, np.int64), at, CORRUPT
            if at + 16 + caplen > size:
                return np.array(offsets, np.int64), at, INCOMPLETE
            offsets.append(at)
            at += 16 + caplen
        return np.array(offsets, np.int64), at, REACHED_LIMIT
