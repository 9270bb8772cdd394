"""The analyser's pending requests as arrays, while the fast path pairs run after run.

``Analyzer.pending`` and ``pending_by_client`` (OrderedDicts of 64-byte keys) define the
pairing. On a scan's capture they hold up to ``MAX_PENDING`` requests, and keeping them
costs a bytes object, two dict insertions and two deletions per request: most of the
pairing's time. While runs of requests and responses follow one another with no generic
event between them, :class:`PendingTable` holds the same state as arrays instead: the
keys' 64-bit words in arrival order with a live flag, and a hash index of their client
parts (``stunscan.pcap.hashindex``). The dicts are empty meanwhile;
:meth:`PendingTable.give` hands the state back, in order, before any per-message code
reads it (``stunscan.pcap.pairing`` decides when).

Only a state in which every pending request has a client part (ID, transport, client) of
its own is taken over: then ``pending_by_client`` is ``pending`` keyed by the client part,
and one table holds both.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from stunscan.pcap.analyzer import CLIENT_KEY
from stunscan.pcap.hashindex import HashIndex

WORDS = 8
"""64-bit words of a pairing key (``stunscan.pcap.analyzer.pair_key``)."""
CLIENT_WORDS = CLIENT_KEY // 8
KEY_BYTES = np.dtype((np.void, WORDS * 8))
CLIENT_BYTES = np.dtype((np.void, CLIENT_KEY))
_MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x94D049BB133111EB,
        0xBF58476D1CE4E5B9,
    ],
    np.uint64,
)
"""Odd multipliers: a key's words mixed into one 64-bit number (equal keys, equal hashes;
every match found by a hash is confirmed on the words themselves)."""
_SHIFT = np.uint64(31)


def word_hash(words: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of 64-bit words (at most eight words), with bit 1 set (the
    form ``stunscan.pcap.hashindex`` stores, so that equal there means equal here).

    Each word is folded in with a multiply and an xor-shift (as splitmix64 mixes): keys'
    words often differ only in their high 32 bits (IPv4 addresses, ports), which a
    multiply alone never carries down to the low bits."""
    hashed = np.zeros(words.shape[0], np.uint64)
    for column in range(words.shape[1]):
        hashed ^= words[:, column]
        hashed *= _MIX[column]
        hashed ^= hashed >> _SHIFT
    return hashed | np.uint64(2)  # type: ignore[no-any-return]


def key_words(keys: list[bytes]) -> np.ndarray:
    """Pairing keys (bytes) as rows of words, as the fast path makes them."""
    return np.frombuffer(b"".join(keys), np.uint64).reshape(len(keys), WORDS)


class PendingTable:
    """Pending requests in arrival order: key words, client hash, size, time, live flag."""

    def __init__(self) -> None:
        self.words = np.empty((0, WORDS), np.uint64)
        self.hashes = np.empty(0, np.uint64)
        self.sizes = np.empty(0, np.int64)
        self.times = np.empty(0, np.float64)
        self.alive = np.empty(0, bool)
        self.end = 0
        """Slots in use (live or dead); the rest is room."""
        self.live = 0
        self.index = HashIndex()
        """The live requests' client hashes -> their slots."""

    @staticmethod
    def can_take(
        pending: OrderedDict[bytes, tuple[int, float]], by_client: dict[bytes, bytes]
    ) -> bool:
        """Whether the dicts' state is one the table holds (a client part per request)."""
        if len(by_client) != len(pending):
            return False
        get = by_client.get
        return all(get(key[:CLIENT_KEY]) == key for key in pending)

    def take(
        self, pending: OrderedDict[bytes, tuple[int, float]], by_client: dict[bytes, bytes]
    ) -> bool:
        """Load the dicts' state (see :meth:`can_take`) and empty them; False (nothing
        done) if two of its client parts share a hash."""
        assert not self.live
        self.end = 0
        if pending:
            words = key_words(list(pending))
            if np.unique(word_hash(words[:, :CLIENT_WORDS])).size < len(pending):
                return False
            values = list(pending.values())
            self.add(
                words,
                np.array([size for size, _ in values], np.int64),
                np.array([when for _, when in values], np.float64),
            )
        pending.clear()
        by_client.clear()
        return True

    def give(
        self, pending: OrderedDict[bytes, tuple[int, float]], by_client: dict[bytes, bytes]
    ) -> None:
        """Hand the state back to the (empty) dicts, in arrival order; the table empties."""
        live = np.flatnonzero(self.alive[: self.end])
        words = np.ascontiguousarray(self.words[live])
        keys = words.view(KEY_BYTES).ravel().tolist()
        clients = np.ascontiguousarray(words[:, :CLIENT_WORDS]).view(CLIENT_BYTES).ravel().tolist()
        values = zip(self.sizes[live].tolist(), self.times[live].tolist(), strict=True)
        pending.update(zip(keys, values, strict=True))
        by_client.update(zip(clients, keys, strict=True))
        self.alive[: self.end] = False
        self.end = self.live = 0
        self.index.clear()

    def earliest(self) -> float:
        """The earliest capture time of a live request (inf if none)."""
        if not self.live:
            return float(np.inf)
        return float(self.times[: self.end][self.alive[: self.end]].min())

    def any_client(self, hashes: np.ndarray) -> bool:
        """Whether any of these client hashes is a live request's."""
        return self.index.contains_any(hashes)

    def find_clients(self, hashes: np.ndarray, clients: np.ndarray) -> np.ndarray:
        """The slot of the live request with each client part (rows of CLIENT_WORDS words,
        ``hashes`` theirs), or -1."""
        found = self.index.find(hashes)
        hit = np.flatnonzero(found >= 0)
        slots = found[hit]
        same = (self.words[slots, :CLIENT_WORDS] == clients[hit]).all(1)
        found[hit[~same]] = -1
        return found

    def oldest(self, count: int) -> np.ndarray:
        """The slots of the ``count`` earliest live requests."""
        if not count:
            return np.empty(0, np.intp)
        return np.flatnonzero(self.alive[: self.end])[:count]

    def remove(self, slots: np.ndarray) -> None:
        self.alive[slots] = False
        self.live -= slots.size
        self.index.remove(self.hashes[slots])

    def add(self, words: np.ndarray, sizes: np.ndarray, times: np.ndarray) -> None:
        """Requests asked, in order (their client parts not live here already)."""
        count = sizes.size
        if not count:
            return
        self._room(count)
        slots = np.arange(self.end, self.end + count)
        self.words[slots] = words
        hashes = word_hash(words[:, :CLIENT_WORDS])
        self.hashes[slots] = hashes
        self.sizes[slots] = sizes
        self.times[slots] = times
        self.alive[slots] = True
        self.end += count
        self.live += count
        self.index.insert(hashes, slots)

    def _room(self, count: int) -> None:
        """Room for ``count`` more slots: the live ones moved to the front, the arrays
        grown if they still do not fit."""
        if self.end + count <= self.alive.size:
            return
        live = np.flatnonzero(self.alive[: self.end])
        size = max(self.alive.size, 2 * (live.size + count), 1024)
        for name in ("words", "hashes", "sizes", "times", "alive"):
            old = getattr(self, name)
            new = np.zeros((size, *old.shape[1:]), old.dtype)
            new[: live.size] = old[live]
            setattr(self, name, new)
        self.end = live.size
        self.index.clear()
        self.index.insert(self.hashes[: live.size], np.arange(live.size))
