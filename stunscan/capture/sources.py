"""Where messages to decode come from: one rule for ``stunscan decode`` and ``explain``.

An input is, in this order: ``-`` (stdin: a capture, raw bytes or hex text); hex on the
command line (tried first unless a file of that name exists, so a message of any length
works and is never taken for a path); a folder (its captures, recursively, recognised by
magic number as ``stunscan pcap`` finds them); a file: a capture (pcap, pcapng, gzip of
either, by magic number), else one message as raw bytes or as hex text (whitespace and
colons allowed) that must at least start like STUN or ChannelData. Captures are read by
the one capture pipeline (:mod:`stunscan.capture.messages`), so decode finds exactly the
messages ``pcap`` finds, with their context; each message's bytes are then dissected with
the Scapy layer. Scapy is
imported here, not by the CLI module, so that ``stunscan --help`` does not pay for it.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scapy.packet import Packet

from stunscan import protocol as proto
from stunscan.capture.files import CaptureError, capture_files_in, is_capture
from stunscan.capture.messages import CaptureMessages, FoundMessage
from stunscan.layers import STUN
from stunscan.text import printable

MAX_MESSAGE_FILE = 1 << 22
"""A file that is not a capture holds one message: raw (at most 65,555 bytes) or as hex
text; anything larger than this is not one, and is not read into memory."""
_HEX_DIGITS = frozenset(string.hexdigits)


class SourceError(Exception):
    """An input the user named that cannot be read at all: the CLI prints it as one line."""


@dataclass(slots=True)
class Decoded:
    """One dissected message, the input it came from, and its context in a capture."""

    origin: str
    """The input, safe to print: a file name, 'hex' or 'stdin'."""
    message: Packet
    found: FoundMessage | None = None
    """Frame, time, addresses, transport, quoted-in-ICMP: None for hex and raw messages."""


Warn = Callable[[str], None]


def hex_bytes(text: str) -> bytes | None:
    """The bytes a hex text spells (whitespace, colons and a 0x prefix allowed), or None."""
    cleaned = "".join(text.split()).replace(":", "")
    if cleaned[:2] in ("0x", "0X"):
        cleaned = cleaned[2:]
    if not cleaned or len(cleaned) % 2 or not _HEX_DIGITS.issuperset(cleaned):
        return None
    return bytes.fromhex(cleaned)


def dissect(data: bytes) -> Packet:
    """The Scapy layer for these message bytes: STUN, classic, ChannelData, truncated or Raw."""
    return STUN(data)


def read_sources(inputs: list[str], warn: Warn) -> Iterator[Decoded]:
    """Yield every message of every input. A damaged capture yields what was read before
    the damage, then ``warn`` is called with one line naming it; an input that cannot be
    read at all (no such file, not hex, empty argument) raises :class:`SourceError`."""
    for item in inputs:
        if not item.strip():
            raise SourceError("an empty argument: give hex, a file, a folder, or '-' for stdin")
        if item == "-":
            yield from _read_stream(sys.stdin.buffer, "stdin", warn)
            continue
        data = hex_bytes(item)
        if data is not None and not _exists(item):
            yield Decoded("hex", dissect(data))
            continue
        path = Path(item)
        if _exists(item) and path.is_dir():
            for file in capture_files_in(path):
                yield from _read_file(file, warn)
        elif _exists(item) and path.is_file():
            yield from _read_file(path, warn)
        else:
            shown = printable(item if len(item) <= 60 else item[:57] + "...")
            raise SourceError(f"{shown!r} is neither a readable file nor hex bytes")


def _exists(item: str) -> bool:
    """Whether a path of this name exists (a name too long for a path does not)."""
    try:
        return Path(item).exists()
    except (OSError, ValueError):
        return False


def _read_file(path: Path, warn: Warn) -> Iterator[Decoded]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SourceError(f"cannot read {printable(str(path))}: {exc.strerror}") from None
    with handle:
        yield from _read_stream(handle, printable(str(path)), warn, path)


def _read_stream(
    stream: BinaryIO, name: str, warn: Warn, path: Path | None = None
) -> Iterator[Decoded]:
    try:
        head = stream.read(4)
    except OSError as exc:
        raise SourceError(f"cannot read {name}: {exc.strerror}") from None
    if is_capture(head):
        yield from _read_capture(CaptureMessages(path or name, stream=stream, head=head), warn)
        return
    data = head + stream.read(MAX_MESSAGE_FILE + 1 - len(head))
    if not data:
        warn(f"{name} is empty: no message")
        return
    if len(data) > MAX_MESSAGE_FILE:
        warn(f"{name} is neither a capture nor one message (over {MAX_MESSAGE_FILE} bytes)")
        return
    message = hex_bytes(data.decode("ascii")) if data.isascii() else None
    if message is None:
        message = data
    if proto.classify(message) is None:
        warn(f"{name} is neither a capture nor a STUN message")
        return
    yield Decoded(name, dissect(message))


def _read_capture(messages: CaptureMessages, warn: Warn) -> Iterator[Decoded]:
    name = messages.reader.name
    try:
        for found in messages:
            yield Decoded(name, dissect(found.data), found)
    except CaptureError as exc:
        warn(str(exc))
    if messages.problem:
        warn(messages.problem)
