"""Where messages to decode come from: hex on the command line, raw files, or captures.

Used by ``stunscan decode`` and ``stunscan explain``, which dissect with the Scapy layer
(the interactive, teaching path). Scapy is imported here, not by the CLI module, so that
``stunscan --help`` does not pay for it.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scapy.packet import Packet
from scapy.utils import PcapReader

from stunscan.layers import STUN, ChannelData, RFC4571Frame, STUNStream, STUNTruncated

PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)


class SourceError(Exception):
    """A source that cannot be read: the CLI prints it as one line."""


@dataclass(slots=True)
class Decoded:
    """One dissected message and where it was found."""

    origin: str
    message: Packet


def _hex_bytes(text: str) -> bytes | None:
    cleaned = "".join(text.split()).replace(":", "")
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    if not cleaned or len(cleaned) % 2 or set(cleaned) - set(string.hexdigits):
        return None
    return bytes.fromhex(cleaned)


def messages_in(packet: Packet) -> list[Packet]:
    """The STUN / ChannelData messages a dissected packet carries, in order."""
    if packet.haslayer(STUNStream):
        found = []
        for message in packet[STUNStream].messages:
            if isinstance(message, RFC4571Frame) and message.message is not None:
                found.append(message.message)
            elif hasattr(message, "malformed_reasons"):
                found.append(message)
        return found
    for layer in (STUN, ChannelData, STUNTruncated):
        if packet.haslayer(layer):
            return [packet[layer]]
    return []


def read_sources(inputs: list[str]) -> Iterator[Decoded]:
    """Yield every message of every input: a capture file, a raw message file, or hex."""
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix in (".pcap", ".pcapng")
            )
            for file in files:
                yield from _read_file(file)
        elif path.is_file():
            yield from _read_file(path)
        else:
            data = _hex_bytes(item)
            if data is None:
                raise SourceError(f"{item!r} is neither a readable file nor hex bytes")
            yield Decoded("hex", STUN(data))


def _read_file(path: Path) -> Iterator[Decoded]:
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from None
    if head not in PCAP_MAGICS:
        yield Decoded(str(path), STUN(path.read_bytes()))
        return
    try:
        with PcapReader(str(path)) as reader:
            for number, packet in enumerate(reader, 1):
                for message in messages_in(packet):
                    yield Decoded(f"{path.name}#{number}", message)
    except (OSError, EOFError, ValueError) as exc:
        raise SourceError(f"{path}: capture unreadable after the messages shown ({exc})") from None
