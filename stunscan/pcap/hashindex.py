"""A hash table of 64-bit hashes to integers, for whole arrays of keys at once (numpy).

Looking up thousands of keys in a sorted array costs a binary search each, with a cache
miss per step (a few milliseconds for a run of a scan's capture); here each key costs a
gather or two. Open addressing with linear probing; removed keys leave a tombstone, and
the table is rebuilt when live keys and tombstones fill half of it. The caller confirms
every hit on its own key words (hashes may collide) and inserts no hash already present.
"""

from __future__ import annotations

import numpy as np

_EMPTY, _GONE = 0, 1
_RESERVED = np.uint64(2)
"""Hashes are stored with this bit set, so that they never equal _EMPTY or _GONE."""
_SMALLEST = 1 << 10


class HashIndex:
    """uint64 hash -> int64 value."""

    def __init__(self) -> None:
        self.live = 0
        self._make(_SMALLEST)

    def _make(self, size: int) -> None:
        self.keys = np.zeros(size, np.uint64)
        self.values = np.zeros(size, np.int64)
        self.used = 0
        """Slots live or tombstones."""
        self._shift = np.uint64(64 - (size.bit_length() - 1))
        self._mask = size - 1

    def _home(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> self._shift).astype(np.intp)

    def _probe(self, hashes: np.ndarray) -> np.ndarray:
        """The slot holding each hash (stored form), or -1."""
        found = np.full(hashes.size, -1, np.intp)
        todo = np.arange(hashes.size)
        slot = self._home(hashes)
        while todo.size:
            stored = self.keys[slot]
            hit = stored == hashes[todo]
            found[todo[hit]] = slot[hit]
            going = ~hit & (stored != _EMPTY)
            todo = todo[going]
            slot = (slot[going] + 1) & self._mask
        return found

    def find(self, hashes: np.ndarray) -> np.ndarray:
        """Each hash's value, or -1 when it is not here."""
        slot = self._probe(hashes | _RESERVED)
        values = np.full(hashes.size, -1, np.int64)
        hit = slot >= 0
        values[hit] = self.values[slot[hit]]
        return values

    def contains_any(self, hashes: np.ndarray) -> bool:
        return bool(hashes.size) and bool(np.any(self._probe(hashes | _RESERVED) >= 0))

    def remove(self, hashes: np.ndarray) -> None:
        """Hashes that are here (others are ignored)."""
        slot = self._probe(hashes | _RESERVED)
        slot = slot[slot >= 0]
        self.keys[slot] = _GONE
        self.live -= slot.size

    def insert(self, hashes: np.ndarray, values: np.ndarray) -> None:
        """Hashes not here yet, each once, with their values."""
        if not hashes.size:
            return
        if 2 * (self.used + hashes.size) > self.keys.size:
            self._rebuild(self.live + hashes.size)
        hashes = hashes | _RESERVED
        todo = np.arange(hashes.size)
        slot = self._home(hashes)
        while todo.size:
            stored = self.keys[slot]
            free = np.flatnonzero(stored <= _GONE)
            # one key per free slot this round (np.unique: the first of each)
            _, first = np.unique(slot[free], return_index=True)
            chosen = free[first]
            at = slot[chosen]
            self.used += int(np.count_nonzero(stored[chosen] == _EMPTY))
            self.keys[at] = hashes[todo[chosen]]
            self.values[at] = values[todo[chosen]]
            waiting = np.ones(todo.size, bool)
            waiting[chosen] = False
            todo = todo[waiting]
            slot = (slot[waiting] + 1) & self._mask
        self.live += hashes.size

    def _rebuild(self, live: int) -> None:
        """A table at most a quarter full of ``live`` keys, the tombstones gone."""
        kept = np.flatnonzero(self.keys > _GONE)
        hashes, values = self.keys[kept], self.values[kept]
        size = _SMALLEST
        while size < 4 * live:
            size *= 2
        self._make(size)
        self.live = 0
        self.insert(hashes, values)

    def clear(self) -> None:
        self.live = 0
        self._make(_SMALLEST)

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """The live (stored hash, value) pairs, in no order."""
        kept = np.flatnonzero(self.keys > _GONE)
        return self.keys[kept], self.values[kept]
