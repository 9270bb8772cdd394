"""Files of targets for ``probe -I`` and ``scan -I``: one reader, two forms.

- Plain lines: whitespace-separated targets, ``#`` comments; each target as the command
  reads it (an address, name, CIDR or range), optionally with a port: ``HOST:PORT`` or
  ``[IPv6]:PORT`` (a bare IPv6 address never carries one).
- A report CSV, Shadowserver's or stunscan's own (plain or gzip): recognised by a header
  line naming an ``ip`` column; each row gives its ip, its port (not only 3478) and its
  protocol, found by the header, so column order and extra columns do not matter.

The shared core: no command package is imported here.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

MAX_FIELD = 1 << 16


class TargetFileError(ValueError):
    """A target file that cannot be read, or a line in it that is not a target."""


@dataclass(frozen=True, slots=True)
class FileTarget:
    """One target as a file gives it."""

    host: str
    """An address, a name, a CIDR or a range, as written."""
    port: int | None
    """None: the command's own port(s)."""
    protocol: str | None
    """From a report row (``udp``, ``tcp``); None on a plain line."""
    where: str
    """``file:line``, for error messages."""


def split_endpoint(text: str, where: str = "") -> tuple[str, int | None]:
    """'h' -> (h, None); 'h:p' -> (h, p); '[v6]' / '[v6]:p'; a bare IPv6 address (or
    CIDR, or range: two colons or more) has no port."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise TargetFileError(f"{where}{text!r}: expected [IPv6] or [IPv6]:PORT")
        return host, _port(rest[1:], text, where) if rest else None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        if not host:
            raise TargetFileError(f"{where}{text!r}: no host")
        return host, _port(port, text, where)
    return text, None


def _port(port: str, text: str, where: str) -> int:
    port = port.strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise TargetFileError(f"{where}{text!r}: the port must be a number from 1 to 65535")
    return int(port)


def _open(path: Path) -> TextIO:
    try:
        if path.name.lower().endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
        return path.open(encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise TargetFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_targets(source: Path | TextIO, name: str | None = None) -> Iterator[FileTarget]:
    """Every target of a file (or a stream such as stdin), in order."""
    label = name or (str(source) if isinstance(source, Path) else "<stdin>")
    stream = _open(source) if isinstance(source, Path) else source
    try:
        yield from _targets(stream, label)
    except (OSError, EOFError, UnicodeError, csv.Error) as exc:
        raise TargetFileError(f"cannot read {label}: {exc}") from None
    finally:
        if isinstance(source, Path):
            stream.close()


def _targets(stream: TextIO, label: str) -> Iterator[FileTarget]:
    number = 0
    for line in stream:
        number += 1
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        header = _header(line)
        if header is not None:
            yield from _report_rows(stream, header, label, number)
            return
        for token in text.split():
            where = f"{label}:{number}: "
            host, port = split_endpoint(token, where)
            yield FileTarget(host, port, None, where)
        yield from _plain(stream, label, number)
        return


def _plain(stream: TextIO, label: str, number: int) -> Iterator[FileTarget]:
    for line in stream:
        number += 1
        text = line.split("#", 1)[0].strip()
        for token in text.split():
            where = f"{label}:{number}: "
            host, port = split_endpoint(token, where)
            yield FileTarget(host, port, None, where)


def _header(line: str) -> list[str] | None:
    """The columns of a report CSV's header line, or None if this is not one."""
    if "," not in line:
        return None
    cells = [cell.strip().strip("\ufeff").lower() for cell in next(csv.reader([line]), [])]
    return cells if "ip" in cells else None


def _report_rows(
    stream: TextIO, header: list[str], label: str, number: int
) -> Iterator[FileTarget]:
    """Rows of a report CSV: ip, and port and protocol if the header has them."""
    csv.field_size_limit(MAX_FIELD)
    ip_at = header.index("ip")
    port_at = header.index("port") if "port" in header else None
    protocol_at = header.index("protocol") if "protocol" in header else None
    for row in csv.reader(stream):
        number += 1
        where = f"{label}:{number}: "
        if len(row) <= ip_at or not row[ip_at].strip():
            continue  # a blank line, or a row without an address: nothing to ask
        port = None
        if port_at is not None and port_at < len(row) and row[port_at].strip():
            port = _port(row[port_at], row[port_at], where)
        protocol = None
        if protocol_at is not None and protocol_at < len(row):
            protocol = row[protocol_at].strip().lower() or None
        yield FileTarget(row[ip_at].strip(), port, protocol, where)


def endpoint(target: FileTarget) -> str:
    """The target as one ``HOST[:PORT]`` word (brackets around an IPv6 address with a port)."""
    if target.port is None:
        return target.host
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


def read_text(text: str, name: str) -> Iterator[FileTarget]:
    """Targets from text in memory (tests, here-documents)."""
    return read_targets(io.StringIO(text), name)
