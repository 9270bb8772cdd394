"""Streaming capture files: pcap (both byte orders, micro- and nanosecond) and pcapng.

The format is recognised by its magic number, never by the file name; a gzip-compressed
capture (magic 1f 8b) is decompressed as it is read. Records are yielded one at a time from
a buffered file (or a stream such as stdin), so memory stays constant whatever the
capture's size, and no length field read from the file decides how much is allocated.
A capture that ends in the middle of a record (or holds a corrupt block) yields everything
before that point and then records why it stopped in :attr:`CaptureReader.problem`.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from stunscan.text import printable

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
PCAPNG_BYTE_ORDERS = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
GZIP_MAGIC = b"\x1f\x8b"
MAX_RECORD = 1 << 20
"""Larger records or blocks than this are taken as corruption (real snaplens are 256 KiB)."""


class CaptureError(Exception):
    """The file is not a capture this reader understands (one line for the user)."""


@dataclass(slots=True)
class Frame:
    """One captured packet: when, which link layer, and the bytes captured."""

    time: float
    linktype: int
    data: bytes


def pcap_boundaries(path: str | Path, parts: int) -> list[int] | None:
    """Byte offsets that cut a pcap file into ``parts`` runs of whole records, or None.

    Near each cut it looks for an offset where eight records in a row parse as plausible
    (timestamps within a decade of the first packet's, lengths within the snap length),
    which random packet bytes do not; None for pcapng, tiny files or no such offset.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(40)
        if len(head) < 40 or head[:4] not in PCAP_MAGICS:
            return None
        order = PCAP_MAGICS[head[:4]][0]
        snaplen = max(struct.unpack(order + "I", head[16:20])[0], 65535)
        first_seconds = struct.unpack(order + "I", head[24:28])[0]
        record = struct.Struct(order + "IIII")

        def plausible_chain(window: bytes, offset: int) -> bool:
            for _ in range(8):
                if offset + 16 > len(window):
                    return False
                seconds, fraction, caplen, length = record.unpack_from(window, offset)
                if not (
                    abs(seconds - first_seconds) < 10 * 365 * 86400
                    and fraction < 1_000_000_000
                    and caplen <= min(snaplen, length, MAX_RECORD)
                ):
                    return False
                offset += 16 + caplen
            return True

        cuts = [24]
        for part in range(1, parts):
            target = size * part // parts
            handle.seek(target)
            window = handle.read(1 << 20)
            found = next(
                (i for i in range(min(len(window), 1 << 18)) if plausible_chain(window, i)), None
            )
            if found is None or target + found <= cuts[-1]:
                return None
            cuts.append(target + found)
        cuts.append(size)
        return cuts


def is_capture(head: bytes) -> bool:
    """Whether a file starting with ``head`` (4 bytes at least) is read as a capture:
    pcap, pcapng, or gzip (whose content must then be one of those)."""
    return head[:4] in PCAP_MAGICS or head[:4] == PCAPNG_MAGIC or head[:2] == GZIP_MAGIC


def capture_files_in(folder: Path) -> list[Path]:
    """The captures under a folder, recursively, in name order, recognised by magic number
    (a gzip file only if what it holds is a capture)."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            with path.open("rb") as handle:
                head = handle.read(4)
                if head[:2] == GZIP_MAGIC:  # a compressed capture, or some other .gz?
                    handle.seek(0)
                    with gzip.GzipFile(fileobj=handle) as inflated:
                        head = inflated.read(4)
        except (OSError, EOFError, zlib.error):
            continue
        if is_capture(head):
            found.append(path)
    return found


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to see its magic): those, then the rest."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._head:
            count = min(len(buffer), len(self._head))
            buffer[:count] = self._head[:count]
            self._head = self._head[count:]
            return count
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class CaptureReader:
    """Iterate over the frames of a pcap or pcapng file."""

    def __init__(
        self,
        path: str | Path,
        start: int | None = None,
        end: int | None = None,
        *,
        stream: BinaryIO | None = None,
        head: bytes = b"",
    ) -> None:
        """``start`` and ``end`` (uncompressed pcap only) limit reading to the records
        between two byte offsets, which must be record boundaries (see
        ``stunscan.pcap.parallel``). ``stream`` reads from an open binary stream instead
        (stdin), ``path`` then only names it; ``head`` is what was already read from it."""
        self.path = Path(path)
        self.start = start
        self.end = end
        self.stream = stream
        self.head = head
        self.problem: str | None = None
        self.frames_read = 0

    @property
    def name(self) -> str:
        """The file's name, safe to print (an ESC in a name never reaches the terminal)."""
        return printable(str(self.path))

    def __iter__(self) -> Iterator[Frame]:
        if self.stream is not None:
            handle: BinaryIO = io.BufferedReader(_Prefixed(self.head, self.stream), 1 << 16)
        else:
            try:
                handle = self.path.open("rb")
            except OSError as exc:
                raise CaptureError(f"cannot read {self.name}: {exc.strerror}") from None
        with handle:
            try:
                yield from self._frames(handle)
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                self._stop(f"damaged compressed data ({printable(str(exc)) or 'cut short'})")
            except OSError as exc:
                self._stop(f"read error ({printable(exc.strerror or str(exc))})")

    def _frames(self, handle: BinaryIO) -> Iterator[Frame]:
        magic = handle.read(4)
        if magic[:2] == GZIP_MAGIC and self.start is None:
            handle = gzip.GzipFile(fileobj=_Prefixed(magic, handle), mode="rb")  # type: ignore[assignment]
            magic = handle.read(4)
        if magic in PCAP_MAGICS:
            yield from self._pcap(handle, *PCAP_MAGICS[magic])
        elif magic == PCAPNG_MAGIC:
            yield from self._pcapng(handle, magic)
        elif not magic:
            raise CaptureError(f"{self.name} is empty: not a pcap or pcapng capture")
        else:
            raise CaptureError(f"{self.name} is not a pcap or pcapng capture")

    def _stop(self, why: str) -> None:
        self.problem = f"{self.name}: {why} after {self.frames_read} packets"

    # -- pcap ----------------------------------------------------------------------------

    def _pcap(self, handle: BinaryIO, order: str, resolution: float) -> Iterator[Frame]:
        header = handle.read(20)
        if len(header) < 20:
            self._stop("truncated file header")
            return
        linktype = struct.unpack(order + "I", header[16:20])[0] & 0x0FFFFFFF
        record = struct.Struct(order + "IIII")
        read = handle.read
        position = 24
        if self.start is not None:
            handle.seek(self.start)
            position = self.start
        end = self.end
        while end is None or position < end:
            head = read(16)
            if len(head) < 16:
                if head:
                    self._stop("truncated packet header")
                return
            seconds, fraction, caplen, _ = record.unpack(head)
            if caplen > MAX_RECORD:
                self._stop(f"corrupt packet record (length {caplen})")
                return
            data = read(caplen)
            if len(data) < caplen:
                self._stop("truncated packet data")
                return
            position += 16 + caplen
            self.frames_read += 1
            yield Frame(seconds + fraction * resolution, linktype, data)

    # -- pcapng --------------------------------------------------------------------------

    def _pcapng(self, handle: BinaryIO, magic: bytes) -> Iterator[Frame]:
        order = "<"
        interfaces: list[tuple[int, float]] = []
        first = True
        read = handle.read
        while True:
            head = magic if first else read(4)
            first = False
            if len(head) < 4:
                if head:
                    self._stop("truncated block header")
                return
            length_bytes = read(4)
            if len(length_bytes) < 4:
                self._stop("truncated block header")
                return
            if head == PCAPNG_MAGIC:
                bom = read(4)
                if len(bom) < 4:
                    self._stop("truncated section header block")
                    return
                if bom not in PCAPNG_BYTE_ORDERS:
                    self._stop(f"corrupt section header block (byte-order magic {bom.hex()})")
                    return
                order = PCAPNG_BYTE_ORDERS[bom]
                block_type = 0x0A0D0D0A
                length = struct.unpack(order + "I", length_bytes)[0]
                if length < 28 or length % 4 or length > MAX_RECORD:
                    self._stop(f"corrupt section header block (length {length})")
                    return
                body = bom + read(length - 12)
                interfaces = []
            else:
                block_type = struct.unpack(order + "I", head)[0]
                length = struct.unpack(order + "I", length_bytes)[0]
                if length < 12 or length % 4 or length > MAX_RECORD:
                    self._stop(f"corrupt block (length {length})")
                    return
                body = read(length - 8)
            if len(body) < length - 8:
                self._stop("truncated block")
                return
            body = body[:-4]  # the trailing copy of the block length
            if len(body) < _FIXED_FIELDS.get(block_type, 0):
                self._stop(f"corrupt block (type {block_type}, length {length}: too short)")
                return
            if block_type == 1:  # Interface Description Block
                linktype = struct.unpack(order + "H", body[:2])[0]
                interfaces.append((linktype, _ts_resolution(body[8:], order)))
            elif block_type == 6:  # Enhanced Packet Block
                interface, high, low, caplen = struct.unpack(order + "IIII", body[:16])
                if interface >= len(interfaces) or 20 + caplen > len(body):
                    self._stop("enhanced packet block inconsistent with its interfaces")
                    return
                linktype, resolution = interfaces[interface]
                self.frames_read += 1
                yield Frame(((high << 32) | low) * resolution, linktype, body[20 : 20 + caplen])
            elif block_type == 3:  # Simple Packet Block: interface 0, no timestamp
                if not interfaces:
                    self._stop("simple packet block before any interface")
                    return
                original = struct.unpack(order + "I", body[:4])[0]
                self.frames_read += 1
                yield Frame(0.0, interfaces[0][0], body[4 : 4 + original])


_FIXED_FIELDS = {1: 8, 6: 20, 3: 4}
"""Bytes of fixed fields before the options or data: Interface Description, Enhanced Packet
and Simple Packet Blocks (a shorter block is corrupt)."""


def _ts_resolution(options: bytes, order: str) -> float:
    """The if_tsresol option of an Interface Description Block (default microseconds)."""
    offset = 0
    while offset + 4 <= len(options):
        code, length = struct.unpack(order + "HH", options[offset : offset + 4])
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = options[offset + 4]
            return 2.0 ** -(value & 0x7F) if value & 0x80 else 10.0**-value
        offset += 4 + ((length + 3) & ~3)
    return 1e-6
