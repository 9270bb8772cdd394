"""Keyed transaction IDs: how the sniffer knows an answer is to our probe without any state.

zmap's UDP module cannot validate what comes back; STUN can, because a server must echo the
96-bit transaction ID. Each probe's ID is a MAC, under a secret drawn per scan, of the
target's address, port and the probe number, so the sniffer recomputes it from the
answer's source alone: no table of what was sent, nothing shared with the sender but the key.

Layout (12 bytes): 11 bytes of keyed BLAKE2b, then the probe number. A forged or stale
answer matches with probability 2^-88. A classic (RFC 3489) probe's 16-byte ID uses the same
MAC, 15 bytes of it. ``--probe shadowserver`` sends the report's all-zero ID; then there is
nothing to check but the address and port, and the report says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from typing import Any

MAX_PROBES = 255


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """The per-scan secret and the ID it gives each (address, port, probe)."""

    secret: bytes = field(default_factory=lambda: os.urandom(32))
    size: int = 12
    """12 for RFC 5389/8489 probes, 16 for classic ones."""
    keyed: Any = field(init=False, repr=False, compare=False)
    """BLAKE2b with the key already absorbed: copying it halves the cost of each MAC."""

    def __post_init__(self) -> None:
        keyed = hashlib.blake2b(digest_size=self.size - 1, key=self.secret)
        object.__setattr__(self, "keyed", keyed)

    def transaction_id(self, address: bytes, port: int, probe: int = 0) -> bytes:
        """The ID to send to ``address`` (packed, 4 or 16 bytes), ``port``, probe ``probe``."""
        mac = self.keyed.copy()
        mac.update(address + port.to_bytes(2, "big") + bytes((probe,)))
        return mac.digest() + bytes((probe,))

    def probe_number(self, transaction_id: bytes, address: bytes, port: int) -> int | None:
        """Which of our probes this ID answers, if it is ours for (address, port)."""
        if len(transaction_id) != self.size:
            return None
        probe = transaction_id[-1]
        expected = self.transaction_id(address, port, probe)
        return probe if hmac.compare_digest(expected, transaction_id) else None
