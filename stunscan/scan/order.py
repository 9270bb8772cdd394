"""The order of a scan: zmap's walk of a cyclic multiplicative group, with no per-target memory.

For a space of ``size`` targets take a prime ``p > size`` and a generator ``g`` of the
group of integers 1..p-1 under multiplication mod p. Starting from ``x0``, the sequence
``x0, x0*g, x0*g^2, ...`` visits every element once before it repeats; element ``x`` stands
for target ``x - 1`` and the few ``x > size`` are skipped. So the order looks random (a
target's neighbours in the address space are far apart in time, sparing their networks),
is reproducible from a seed, and needs one multiplication per target.

Sharding is the same walk cut by position, as zmap does it: shard ``i`` of ``n`` takes
positions ``i, i+n, i+2n...``, so it starts at ``x0*g^i`` and steps by ``g^n``. Shards
are disjoint and together cover the space, whichever machines run them, given one seed.

The sender takes the walk in blocks: with the powers ``step^0..step^(B-1)`` computed once, a
block of ``B`` positions is one vectorised multiplication ``x * powers mod p`` (in 64-bit
integers while ``p < 2^32``, so no product overflows; in Python integers beyond).

``p`` is a *safe* prime (``(p-1)/2`` also prime), which makes checking that ``g`` generates
the group two modular powers, with no factoring of ``p-1``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BLOCK = 16384
"""Group elements per block: large enough that numpy's per-call cost vanishes per target."""
_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def is_prime(n: int) -> bool:
    """Miller-Rabin with the first 20 primes as bases: exact below 3.3e24 (2^81), and for
    larger numbers wrong with a probability far below anything that matters for an order."""
    if n < 2:
        return False
    for prime in _SMALL_PRIMES:
        if n % prime == 0:
            return n == prime
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for base in _SMALL_PRIMES:
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def safe_prime_above(n: int) -> int:
    """The smallest safe prime greater than ``n`` (at least 5)."""
    candidate = max(n + 1, 5)
    while True:
        if candidate == 5 or (
            candidate % 4 == 3 and is_prime((candidate - 1) // 2) and is_prime(candidate)
        ):
            return candidate
        candidate += 1


@dataclass(frozen=True, slots=True)
class CyclicOrder:
    """The walk for one target space and seed."""

    size: int
    prime: int
    generator: int
    start: int

    @classmethod
    def for_space(cls, size: int, seed: int) -> CyclicOrder:
        prime = safe_prime_above(size)
        rng = random.Random(seed)
        half = (prime - 1) // 2
        while True:
            candidate = rng.randrange(2, prime - 1) if prime > 5 else 2
            # the order of g divides p-1 = 2q: it is p-1 unless g^2 or g^q is 1
            if pow(candidate, 2, prime) != 1 and pow(candidate, half, prime) != 1:
                break
        return cls(size, prime, candidate, rng.randrange(1, prime))

    def shard_length(self, shards: int, shard: int) -> int:
        """How many group elements (targets and skipped ones) shard ``shard`` walks."""
        elements = self.prime - 1
        return 0 if shard >= elements else (elements - 1 - shard) // shards + 1

    def blocks(self, shards: int = 1, shard: int = 0, block: int = BLOCK) -> Iterator[np.ndarray]:
        """Target indexes of one shard in scan order, ``block`` group elements at a time:
        int64 arrays, or arrays of Python ints for spaces of 2^63 targets and more."""
        if not 0 <= shard < shards:
            raise ValueError("the shard is 0..shards-1")
        prime, size = self.prime, self.size
        x = self.start * pow(self.generator, shard, prime) % prime
        step = pow(self.generator, shards, prime)
        remaining = self.shard_length(shards, shard)
        count = min(block, remaining)
        powers_list = [1] * count
        for k in range(1, count):
            powers_list[k] = powers_list[k - 1] * step % prime
        exact = prime < 1 << 32
        powers = np.array(powers_list, dtype=np.uint64 if exact else object)
        leap = pow(step, count, prime)
        while remaining > 0:
            taken = min(count, remaining)
            elements = x * powers[:taken] % prime
            picked = elements[elements <= size] - 1
            yield picked.astype(np.int64) if size < 1 << 63 else picked
            x = x * leap % prime
            remaining -= taken

    def walk(self, shards: int = 1, shard: int = 0) -> Iterator[int]:
        """Target indexes of one shard, in scan order, one at a time."""
        for block in self.blocks(shards, shard):
            yield from block.tolist()
