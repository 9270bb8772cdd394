"""What a scan may touch: target parsing, the blocklist, and the target space as numbers.

Targets are kept as merged ranges of integers per family, never as lists of addresses, so a
/8 or a /104 costs a few tuples. Subtracting the blocklist and ``--exclude`` happens on
those ranges, before anything is sent: an address that is not in the final space has no
index, so the sender cannot reach it (``tests/test_scan_lab.py`` captures every packet sent
to check exactly that). The order of a scan is :mod:`stunscan.scan.order`'s business.
"""

from __future__ import annotations

import bisect
import ipaddress
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from stunscan.special import SPECIAL_PURPOSE
from stunscan.targetfile import FileTarget, TargetFileError, read_targets, split_endpoint

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetError(ValueError):
    """A target, port or exclusion the user wrote that cannot be read (one line, exit 2)."""


@dataclass(frozen=True, slots=True)
class Span:
    """Addresses ``first``..``last`` (inclusive) of one family, as integers."""

    version: int
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise TargetError(f"not an address or CIDR: {text!r}") from None


def parse_target(text: str) -> Span:
    """One target: ``ADDRESS``, ``CIDR`` or ``FIRST-LAST`` (IPv4 or IPv6)."""
    text = text.strip()
    if "-" in text and "/" not in text:
        low, _, high = text.partition("-")
        try:
            first, last = ipaddress.ip_address(low.strip()), ipaddress.ip_address(high.strip())
        except ValueError:
            raise TargetError(f"not an address range: {text!r}") from None
        if first.version != last.version or int(first) > int(last):
            raise TargetError(f"not an address range (FIRST-LAST, one family): {text!r}")
        return Span(first.version, int(first), int(last))
    network = _network(text)
    return Span(network.version, int(network.network_address), int(network.broadcast_address))


def read_lines(source: TextIO | Path) -> Iterator[str]:
    """Non-empty lines without ``#`` comments, from a file or a stream (stdin)."""
    if isinstance(source, Path):
        try:
            stream: TextIO = source.open(encoding="utf-8")
        except OSError as exc:
            raise TargetError(f"cannot read {source}: {exc.strerror}") from None
        with stream:
            yield from _clean(stream)
    else:
        yield from _clean(source)


def _clean(stream: TextIO) -> Iterator[str]:
    for line in stream:
        text = line.split("#", 1)[0].strip()
        if text:
            yield from text.split()


@dataclass(frozen=True, slots=True)
class Pinned:
    """An address with its own port (``ADDRESS:PORT``, or a report CSV's row): probed on
    that port alone, not on every ``--port``."""

    version: int
    address: int
    port: int


def _add(target: FileTarget, spans: list[Span], pinned: list[Pinned]) -> None:
    if target.protocol not in (None, "udp"):
        return  # a report's TCP row: a scan sends UDP only
    if target.port is None:
        spans.append(parse_target(target.host))
        return
    try:
        address = ipaddress.ip_address(target.host)
    except ValueError:
        raise TargetError(
            f"{target.where}not an address: {target.host!r} (ADDRESS:PORT takes one address)"
        ) from None
    pinned.append(Pinned(address.version, int(address), target.port))


def gather(items: Iterable[str], files: Iterable[Path] = ()) -> tuple[list[Span], list[Pinned]]:
    """Targets from the command line (``-`` reads stdin) and from files (plain lines or a
    report CSV, ``stunscan.targetfile``): spans for every ``--port``, and pinned
    ADDRESS:PORT pairs."""
    spans: list[Span] = []
    pinned: list[Pinned] = []
    try:
        for item in items:
            if item == "-":
                for target in read_targets(sys.stdin):
                    _add(target, spans, pinned)
            else:
                host, port = split_endpoint(item)
                _add(FileTarget(host, port, None, ""), spans, pinned)
        for path in files:
            for target in read_targets(path):
                _add(target, spans, pinned)
    except TargetFileError as exc:
        raise TargetError(str(exc)) from None
    return spans, pinned


def gather_targets(items: Iterable[str], files: Iterable[Path] = ()) -> list[Span]:
    """Targets without ports of their own (see :func:`gather` for ADDRESS:PORT)."""
    spans, pinned = gather(items, files)
    if pinned:
        raise TargetError("ADDRESS:PORT targets: use gather()")
    return spans


def parse_ports(texts: Iterable[str]) -> tuple[int, ...]:
    """``3478``, ``3478,5349`` or ``3478-3480``; sorted, without repeats."""
    ports: set[int] = set()
    for text in texts:
        for part in text.split(","):
            low, _, high = part.strip().partition("-")
            high = high or low
            if not (_is_port_text(low.strip()) and _is_port_text(high.strip())):
                raise TargetError(f"not a port or port range: {part!r}")
            first, last = int(low), int(high)
            if not 1 <= first <= last <= 65535:
                raise TargetError(f"ports are 1 to 65535: {part!r}")
            ports.update(range(first, last + 1))
    if not ports:
        raise TargetError("no port to scan")
    return tuple(sorted(ports))


def _is_port_text(text: str) -> bool:
    """ASCII digits only (int() also takes full-width digits, '+3478' and '3_478'), at most 5."""
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


def merge(spans: Iterable[Span]) -> list[Span]:
    """Sorted, overlapping and adjacent spans joined, so no address is counted twice."""
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.version, s.first)):
        if merged and merged[-1].version == span.version and span.first <= merged[-1].last + 1:
            if span.last > merged[-1].last:
                merged[-1] = Span(span.version, merged[-1].first, span.last)
        else:
            merged.append(span)
    return merged


def subtract(spans: list[Span], holes: list[Span]) -> list[Span]:
    """``spans`` minus ``holes`` (both merged)."""
    result: list[Span] = []
    for span in spans:
        pieces = [span]
        for hole in holes:
            if hole.version != span.version:
                continue
            next_pieces = []
            for piece in pieces:
                if hole.last < piece.first or hole.first > piece.last:
                    next_pieces.append(piece)
                    continue
                if piece.first < hole.first:
                    next_pieces.append(Span(piece.version, piece.first, hole.first - 1))
                if hole.last < piece.last:
                    next_pieces.append(Span(piece.version, hole.last + 1, piece.last))
            pieces = next_pieces
        result.extend(pieces)
    return result


def blocklist(allow: Iterable[str] = (), exclude: Iterable[Span] = ()) -> list[Span]:
    """The special-purpose ranges minus what ``--allow`` lifts, plus ``--exclude``."""
    special = merge(parse_target(cidr) for cidr, _ in SPECIAL_PURPOSE)
    lifted = merge(parse_target(text) for text in allow)
    return merge([*subtract(special, lifted), *exclude])


def special_purpose_parts(spans: list[Span]) -> list[tuple[Span, str]]:
    """The parts of ``spans`` (merged) inside special-purpose ranges, each with the range's
    name: what is scanned only because ``--allow`` lifted it."""
    parts = []
    for cidr, name in SPECIAL_PURPOSE:
        special = parse_target(cidr)
        for span in spans:
            if span.version != special.version:
                continue
            first, last = max(span.first, special.first), min(span.last, special.last)
            if first <= last:
                parts.append((Span(span.version, first, last), name))
    return parts


def read_exclusions(paths: Iterable[Path]) -> list[Span]:
    """``--exclude`` files: one address, CIDR or range per line, ``#`` comments."""
    return [parse_target(line) for path in paths for line in read_lines(path)]


LOW_64 = (1 << 64) - 1


@dataclass(slots=True)
class Targets:
    """A block of targets as columns, for the sender's vectorised frame building: the
    address as two 64-bit halves (an IPv4 address is all in ``low``)."""

    version: np.ndarray
    high: np.ndarray
    low: np.ndarray
    port: np.ndarray

    def __len__(self) -> int:
        return len(self.low)

    def select(self, rows: np.ndarray) -> Targets:
        """The rows a mask or an index array picks, in its order."""
        return Targets(self.version[rows], self.high[rows], self.low[rows], self.port[rows])

    @classmethod
    def of(cls, version: int, addresses: Iterable[int], ports: Iterable[int]) -> Targets:
        """From Python integers (slow; for small batches and tests)."""
        numbers = list(addresses)
        return cls(
            np.full(len(numbers), version, dtype=np.uint8),
            np.array([number >> 64 for number in numbers], dtype=np.uint64),
            np.array([number & LOW_64 for number in numbers], dtype=np.uint64),
            np.array(list(ports), dtype=np.uint16),
        )


class TargetSpace:
    """Every (address, port) of a scan, numbered 0..size-1 without listing them.

    Index ``i`` is address ``i // len(ports)`` of the spans (in order) and port
    ``ports[i % len(ports)]``, found by bisecting the spans' running totals.
    """

    def __init__(
        self, spans: list[Span], ports: tuple[int, ...], pinned: Iterable[Pinned] = ()
    ) -> None:
        self.spans = spans
        self.ports = ports
        self._product_ports = ports
        self._starts: list[int] = []
        self._keys = [(span.version, span.first) for span in spans]
        total = 0
        for span in spans:
            self._starts.append(total)
            total += span.size
        self.addresses = total
        self.size = total * len(ports)
        self._vectorised = self.size < 1 << 63
        if self._vectorised:
            self._start_column = np.array(self._starts, dtype=np.int64)
            self._version_column = np.array([span.version for span in spans], dtype=np.uint8)
            self._high_column = np.array([span.first >> 64 for span in spans], dtype=np.uint64)
            self._low_column = np.array([span.first & LOW_64 for span in spans], dtype=np.uint64)
            self._port_column = np.array(ports, dtype=np.uint16)
        self._product_size = self.size
        self._pinned_targets(pinned)

    def _pinned_targets(self, pinned: Iterable[Pinned]) -> None:
        """ADDRESS:PORT targets after every (address, port) of the spans: index
        ``size_of_spans + i`` is pinned target ``i``. One already in the spans on one of
        their ports is not added again (overlaps are scanned once)."""
        product_ports = set(self._product_ports)
        kept = sorted(
            {
                p
                for p in pinned
                if not (p.port in product_ports and self._in_spans(p.version, p.address))
            },
            key=lambda p: (p.version, p.address, p.port),
        )
        self.pinned = kept
        self._pinned_set = {(p.version, p.address) for p in kept}
        self.size = self._product_size + len(kept)
        self.addresses += len(self._pinned_set - self._span_members(self._pinned_set))
        if kept:
            self.ports = tuple(sorted(product_ports | {p.port for p in kept}))
            self._pinned_columns = Targets(
                np.array([p.version for p in kept], dtype=np.uint8),
                np.array([p.address >> 64 for p in kept], dtype=np.uint64),
                np.array([p.address & LOW_64 for p in kept], dtype=np.uint64),
                np.array([p.port for p in kept], dtype=np.uint16),
            )

    def _span_members(self, found: set[tuple[int, int]]) -> set[tuple[int, int]]:
        return {
            (version, address) for version, address in found if self._in_spans(version, address)
        }

    @classmethod
    def build(
        cls,
        targets: list[Span],
        ports: tuple[int, ...],
        blocked: list[Span],
        pinned: Iterable[Pinned] = (),
    ) -> TargetSpace:
        allowed = [p for p in pinned if not _blocked(blocked, p.version, p.address)]
        return cls(subtract(merge(targets), blocked), ports, allowed)

    def __len__(self) -> int:
        return self.size

    def address(self, index: int) -> tuple[int, int]:  # (of the spans; see __getitem__)
        """(version, address as an integer) of address number ``index``."""
        where = bisect.bisect_right(self._starts, index) - 1
        span = self.spans[where]
        return span.version, span.first + index - self._starts[where]

    def __getitem__(self, index: int) -> tuple[int, int, int]:
        """(version, address, port) of target ``index``."""
        if not 0 <= index < self.size:
            raise IndexError(index)
        if index >= self._product_size:
            target = self.pinned[index - self._product_size]
            return target.version, target.address, target.port
        count = len(self._product_ports)
        version, address = self.address(index // count)
        return version, address, self._product_ports[index % count]

    def columns(self, indexes: np.ndarray) -> Targets:
        """The targets of an array of indexes, as columns (the same as ``self[i]`` each)."""
        if self.pinned and indexes.dtype != object:
            later = indexes >= self._product_size
            if later.any():
                spans = self._span_columns(indexes[~later])
                pinned = self._pinned_columns.select(indexes[later] - self._product_size)
                out = Targets(
                    np.empty(len(indexes), np.uint8),
                    np.empty(len(indexes), np.uint64),
                    np.empty(len(indexes), np.uint64),
                    np.empty(len(indexes), np.uint16),
                )
                for name in ("version", "high", "low", "port"):
                    column = getattr(out, name)
                    column[~later] = getattr(spans, name)
                    column[later] = getattr(pinned, name)
                return out
        return self._span_columns(indexes)

    def _span_columns(self, indexes: np.ndarray) -> Targets:
        if not self._vectorised or indexes.dtype == object:
            rows = [self[int(index)] for index in indexes]
            return Targets(
                np.array([row[0] for row in rows], dtype=np.uint8),
                np.array([row[1] >> 64 for row in rows], dtype=np.uint64),
                np.array([row[1] & LOW_64 for row in rows], dtype=np.uint64),
                np.array([row[2] for row in rows], dtype=np.uint16),
            )
        numbers, which = np.divmod(indexes, len(self._product_ports))
        where = np.searchsorted(self._start_column, numbers, side="right") - 1
        first_low = self._low_column[where]
        low = first_low + (numbers - self._start_column[where]).astype(np.uint64)
        high = self._high_column[where] + (low < first_low)  # the carry out of the low half
        return Targets(self._version_column[where], high, low, self._port_column[which])

    def contains(self, version: int, address: int) -> bool:
        """Whether an address is one this scan targets (for answers to the zero-ID probe)."""
        return self._in_spans(version, address) or (version, address) in self._pinned_set

    def _in_spans(self, version: int, address: int) -> bool:
        where = bisect.bisect_right(self._keys, (version, address)) - 1
        if where < 0:
            return False
        span = self.spans[where]
        return span.version == version and address <= span.last

    def versions(self) -> set[int]:
        return {span.version for span in self.spans} | {p.version for p in self.pinned}

    def first_address(self, version: int) -> str | None:
        """Some target of this family, to find the route the scan will take."""
        for span in self.spans:
            if span.version == version:
                return address_text(version, span.first)
        for target in self.pinned:
            if target.version == version:
                return address_text(version, target.address)
        return None


def _blocked(blocked: list[Span], version: int, address: int) -> bool:
    """Whether an address is in ``blocked`` (merged, so sorted by family and start)."""
    where = bisect.bisect_right(blocked, (version, address), key=lambda s: (s.version, s.first))
    return (
        where > 0 and blocked[where - 1].version == version and address <= blocked[where - 1].last
    )


def address_text(version: int, number: int) -> str:
    """An address of the space as text; the version decides, not the size (::2 is IPv6)."""
    return str(ipaddress.IPv6Address(number) if version == 6 else ipaddress.IPv4Address(number))
