"""Keyed transaction IDs: how the sniffer knows an answer is to our probe without any state.

zmap's UDP module cannot validate what comes back; STUN can, because a server must echo the
96-bit transaction ID. Each probe's ID is a MAC, under a secret drawn per scan, of the
target's address, port and the probe number, so the sniffer recomputes it from the
answer's source alone: no table of what was sent, nothing shared with the sender but the key.

The MAC is AES-128 CBC-MAC over two blocks of fixed layout, as zmap keys its own validation
with AES:

- block 1: the address, 16 bytes (an IPv4 address right-aligned in zeros);
- block 2: port (2 bytes), probe number, IP version (which keeps 0.0.0.1 and ::1 apart),
  then 12 zero bytes.

The MAC is ``E(E(block1) xor block2)``. CBC-MAC is a pseudo-random function for messages of
one fixed length (Bellare, Kilian and Rogaway), which these are. AES rather than a hash
because OpenSSL encrypts a whole batch of blocks in one call (about 14 ns a target), so
the sender keys 16,384 probes with two calls, and the sniffer checks one answer with two
calls of about 0.15 µs.

Layout (12 bytes): 11 bytes of MAC, then the probe number. A forged or stale answer
matches with probability 2^-88. A classic (RFC 3489) probe's 16-byte ID takes 15 bytes of
the MAC. ``--probe shadowserver`` sends the report's all-zero ID; then there is nothing to
check but the address and port, and the report says so.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from stunscan.scan.targets import Targets

MAX_PROBES = 255


def _tag(port: int, probe: int, version: int) -> int:
    """Block 2's first four bytes, as an integer."""
    return port << 16 | probe << 8 | version


@dataclass(frozen=True, slots=True)
class TransactionKey:
    """The per-scan secret and the ID it gives each (address, port, probe)."""

    secret: bytes = field(default_factory=lambda: os.urandom(16))
    size: int = 12
    """12 for RFC 5389/8489 probes, 16 for classic ones."""
    cipher: Any = field(init=False, repr=False, compare=False)
    """One AES encryptor in ECB mode: stateless between calls, so it serves every block."""

    def __post_init__(self) -> None:
        if len(self.secret) != 16:
            raise ValueError("the transaction ID key is 16 bytes (AES-128)")
        encryptor = Cipher(algorithms.AES(self.secret), modes.ECB()).encryptor()
        object.__setattr__(self, "cipher", encryptor)

    def transaction_id(self, address: bytes, port: int, probe: int = 0) -> bytes:
        """The ID to send to ``address`` (packed, 4 or 16 bytes), ``port``, probe ``probe``."""
        version = 4 if len(address) == 4 else 6
        first = int.from_bytes(self.cipher.update(address.rjust(16, b"\0")), "big")
        second = first ^ _tag(port, probe, version) << 96
        mac = self.cipher.update(second.to_bytes(16, "big"))
        return mac[: self.size - 1] + bytes((probe,))

    def transaction_ids(self, version: int, targets: Targets, probes: np.ndarray) -> np.ndarray:
        """The IDs of a batch of probes to one family's ``targets``, as ``(n, size)`` bytes:
        row for row what ``transaction_id`` gives."""
        count = len(targets)
        blocks = np.empty((count, 2), dtype=">u8")
        blocks[:, 0] = targets.high
        blocks[:, 1] = targets.low
        first = np.frombuffer(self.cipher.update(blocks.tobytes()), dtype=">u8").reshape(count, 2)
        tags = targets.port.astype(np.uint64) << np.uint64(16)
        tags |= probes.astype(np.uint64) << np.uint64(8) | np.uint64(version)
        second = first.copy()
        second[:, 0] ^= tags << np.uint64(32)
        mac = np.frombuffer(self.cipher.update(second.tobytes()), dtype=np.uint8).reshape(count, 16)
        ids = np.empty((count, self.size), dtype=np.uint8)
        ids[:, :-1] = mac[:, : self.size - 1]
        ids[:, -1] = probes
        return ids

    def probe_number(self, transaction_id: bytes, address: bytes, port: int) -> int | None:
        """Which of our probes this ID answers, if it is ours for (address, port)."""
        if len(transaction_id) != self.size:
            return None
        probe = transaction_id[-1]
        expected = self.transaction_id(address, port, probe)
        return probe if hmac.compare_digest(expected, transaction_id) else None
