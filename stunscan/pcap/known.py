"""Servers already reported, as arrays: which responses of a run can be skipped at once.

A scan's capture holds many responses per server, and only a server's first becomes a
row. The analyser's tally (a set of 24-byte server keys) says which servers were seen;
asking it once per response means a bytes object and a set lookup per response. This
mirror of part of that set answers for a whole run with numpy: a response whose server is
here is certainly in the tally (servers are never removed from it), and only the others
are looked up in the set itself.
"""

from __future__ import annotations

import numpy as np

from stunscan.pcap.hashindex import HashIndex
from stunscan.pcap.pending import word_hash

SERVER_WORDS = 3
"""64-bit words of a server key (``stunscan.pcap.analyzer.server_key``)."""


class KnownServers:
    """Server keys (rows of SERVER_WORDS words) known to be reported, by hash."""

    def __init__(self) -> None:
        self.index = HashIndex()
        self.words = np.empty((1024, SERVER_WORDS), np.uint64)
        self.count = 0

    def unknown(self, words: np.ndarray) -> np.ndarray:
        """Which of these servers are not (certainly) here: a bool per row."""
        if not self.count or not words.shape[0]:
            return np.ones(words.shape[0], bool)
        at = self.index.find(word_hash(words))
        known = at >= 0
        known[known] = (self.words[at[known]] == words[known]).all(1)
        return ~known

    def add(self, words: np.ndarray) -> None:
        """Servers now in the tally (those here already are skipped, as is one whose hash
        another server has: it is left to the tally's set)."""
        words = words[self.unknown(words)]
        if not words.shape[0]:
            return
        hashes, first = np.unique(word_hash(words), return_index=True)
        new = self.index.find(hashes) < 0
        hashes, first = hashes[new], first[new]
        if self.count + first.size > self.words.shape[0]:
            grown = np.empty((2 * (self.count + first.size), SERVER_WORDS), np.uint64)
            grown[: self.count] = self.words[: self.count]
            self.words = grown
        self.words[self.count : self.count + first.size] = words[first]
        self.index.insert(hashes, np.arange(self.count, self.count + first.size))
        self.count += first.size
