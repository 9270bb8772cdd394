"""One observed STUN response -> the Shadowserver "Accessible STUN Service" row; writers.

The CSV has the report's 28 columns in the report's order and formats (see DESIGN.md):
timestamps in UTC, hex without 0x except FINGERPRINT, amplification with two decimals.
The enrichment columns (hostname, asn, geo, region, city, naics, hostname_source, sector)
come from ``stunscan.enrich``; a record without enrichment leaves them empty. Every cell is
guarded against spreadsheet formula injection, since SOFTWARE is whatever the server sent.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import IO, Any

from stunscan import protocol as proto
from stunscan import roles
from stunscan.codec import Message
from stunscan.enrich.columns import Enrichment
from stunscan.jsonout import json_text
from stunscan.jsonshape import address_json, codec_attribute_json, endpoint_json
from stunscan.text import printable

COLUMNS = (
    "timestamp",
    "severity",
    "ip",
    "protocol",
    "port",
    "hostname",
    "tag",
    "asn",
    "geo",
    "region",
    "city",
    "naics",
    "hostname_source",
    "sector",
    "transaction_id",
    "magic_cookie",
    "message_length",
    "message_type",
    "mapped_family",
    "mapped_address",
    "mapped_port",
    "xor_mapped_family",
    "xor_mapped_address",
    "xor_mapped_port",
    "software",
    "fingerprint",
    "amplification",
    "response_size",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_LOOKALIKES = (
    "\uff1d\uff0b\uff0d\uff20"  # full-width = + - @
    "\ufe66\ufe62\ufe63\ufe6b"  # small = + - @
    "\u207c\u207a\u208c\u208a\u2a75\u2a76\ufb29\u2212"  # super/subscript, ==, minus sign
)
"""Characters a spreadsheet may read as = + - @ (their NFKC form, and the minus sign)."""
_FORMULA_FIRST = frozenset("".join(_FORMULA_START) + _LOOKALIKES)
_FORMULA_AFTER_COMMA = (*("," + start for start in _FORMULA_START[:4]), ", ")
"""A cell other than the first that may start a formula (tab and CR are not printable);
a leading space too, since spreadsheets trim it."""
_LOOKALIKE = re.compile(f"[{_LOOKALIKES}]")
_SEPARATORS = len(COLUMNS) - 1


@dataclass(slots=True)
class Record:
    """A STUN server seen answering, with what its answer held (one report row)."""

    time: float
    ip: str
    port: int
    protocol: str
    message: Message
    response_size: int
    request_size: int | None
    client: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    pair_key: bytes | None = field(default=None, repr=False)
    """How this response pairs with its request (for merging parallel runs); not output."""
    enrichment: Enrichment | None = None
    """The columns a response does not carry (stunscan.enrich), once looked up."""

    @property
    def direction(self) -> str:
        """'response', 'request' or 'indication': what the row is. In every row ``ip`` and
        ``port`` name the server; only a response has a size and an amplification."""
        return roles.direction(self.message.msg_type) if self.message.is_stun else "response"

    @property
    def role(self) -> str | None:
        """The answering host's role (see stunscan.roles); None unless a response."""
        if self.direction != roles.RESPONSE:
            return None
        return roles.role(self.message.msg_type, _signed(self.message))

    @property
    def probe_size(self) -> int:
        """The request the amplification is measured against: the real one if it was seen,
        else the report's 20-byte reference probe."""
        return self.request_size or len(proto.REFERENCE_PROBE)

    @property
    def amplification(self) -> float:
        return self.response_size / self.probe_size

    @property
    def family(self) -> int:
        return 6 if ":" in self.ip else 4

    def addresses(self) -> tuple[proto.Address | None, proto.Address | None]:
        """(MAPPED-ADDRESS, XOR-MAPPED-ADDRESS), the legacy 0x8020 standing in for the latter."""
        mapped = self._address(proto.MAPPED_ADDRESS)
        xor = self._address(proto.XOR_MAPPED_ADDRESS) or self._address(
            proto.XOR_MAPPED_ADDRESS_LEGACY
        )
        return mapped, xor

    def _address(self, code: int) -> proto.Address | None:
        attr = self._meaningful(code)
        return None if attr is None else attr.decoded  # type: ignore[no-any-return]

    def _meaningful(self, code: int) -> Any:
        """The attribute if present with its registry meaning: well formed, and not in a
        message of unknown method (whose codes may mean something else)."""
        attr = self.message.get(code)
        if attr is None or attr.problem or attr.opaque:
            return None
        return attr

    def software(self) -> str:
        attr = self._meaningful(proto.SOFTWARE)
        return "" if attr is None else str(attr.decoded)

    def fingerprint_value(self) -> int | None:
        attr = self._meaningful(proto.FINGERPRINT)
        return None if attr is None else int(attr.decoded)

    def row(self) -> dict[str, str]:
        """The report's columns, formatted as the report formats them. A request's or an
        indication's row has no severity, tag, size or amplification: it is no finding."""
        message = self.message
        mapped, xor = self.addresses()
        row = dict(
            zip(
                COLUMNS,
                row_cells(
                    self.time,
                    self.ip,
                    self.port,
                    self.protocol,
                    message.transaction_id,
                    message.cookie,
                    message.length,
                    message.msg_type,
                    mapped,
                    xor,
                    self.software(),
                    self.fingerprint_value(),
                    self.amplification,
                    self.response_size,
                    self.enrichment,
                ),
                strict=True,
            )
        )
        if self.direction != roles.RESPONSE:
            for column in _RESPONSE_ONLY:
                row[column] = ""
        return row

    def as_json(self) -> dict[str, Any]:
        """The row plus what the CSV has no column for (why the values are what they are),
        in the one row shape of ``stunscan/schemas/common.json``: numbers as numbers,
        absent values null, addresses as objects, every attribute's raw hex kept."""
        result: dict[str, Any] = {
            column: _typed(column, cell) for column, cell in self.row().items()
        }
        response = self.direction == roles.RESPONSE
        result.update(
            direction=self.direction,
            role=self.role,
            type_name=self.message.type_name,
            server=address_json(self.ip, self.port),
            client=endpoint_json(self.client),
            request_size=self.request_size,
            amplification_basis=(
                None if not response else "request" if self.request_size else "reference-probe"
            ),
            fingerprint_valid=self.message.fingerprint,
            malformed=list(self.message.malformed),
            attributes=[codec_attribute_json(a) for a in self.message.attributes],
        )
        if self.enrichment is not None:
            result.update(self.enrichment.as_json())
        result.update(self.extra)
        return result


_RESPONSE_ONLY = ("severity", "tag", "amplification", "response_size")
_INTEGER_COLUMNS = frozenset({"port", "message_length", "mapped_port", "xor_mapped_port",
                              "response_size"})  # fmt: skip


def _typed(column: str, cell: str) -> Any:
    """A CSV cell as its JSON value: integers and the amplification as numbers, empty
    cells as null (strings otherwise: hex codes stay the report's text)."""
    if cell == "":
        return None
    if column in _INTEGER_COLUMNS:
        return int(cell)
    if column == "amplification":
        return float(cell)
    return cell


def _signed(message: Message) -> bool:
    return any(a.code in proto.INTEGRITY_ATTRIBUTES for a in message.attributes)


def row_cells(
    when: float,
    ip: str,
    port: int,
    protocol: str,
    transaction_id: bytes,
    cookie: int | None,
    length: int,
    msg_type: int,
    mapped: proto.Address | None,
    xor: proto.Address | None,
    software: str,
    fingerprint: int | None,
    amplification: float,
    response_size: int,
    enrichment: Enrichment | None = None,
) -> list[str]:
    """The cells of a report row in COLUMNS order, unescaped (see safe_cell); shared by
    :meth:`Record.row` and ``stunscan.csvrow``, so that both format alike."""
    hostname, asn, geo, region, city, naics, source, sector = (
        _NOT_ENRICHED if enrichment is None else enrichment.cells()
    )
    return [
        _utc_text(math.floor(when)),
        "medium",
        ip,
        protocol,
        str(port),
        hostname,
        "stun",
        asn,
        geo,
        region,
        city,
        naics,
        source,
        sector,
        transaction_id.hex(),
        f"{cookie:08x}" if cookie is not None else transaction_id[:4].hex(),
        str(length),
        f"{msg_type:04x}",
        f"{mapped.family:02x}" if mapped else "",
        mapped.address if mapped else "",
        str(mapped.port) if mapped else "",
        f"{xor.family:02x}" if xor else "",
        xor.address if xor else "",
        str(xor.port) if xor else "",
        software,
        f"0x{fingerprint:08x}" if fingerprint is not None else "",
        f"{amplification:.2f}",
        str(response_size),
    ]


_NOT_ENRICHED = ("",) * 8
ENRICHED_AT = tuple(
    COLUMNS.index(name)
    for name in ("hostname", "asn", "geo", "region", "city", "naics", "hostname_source", "sector")
)
"""Where :meth:`Enrichment.cells` go in a row."""


def enrich_cells(cells: list[str], enrichment: Enrichment) -> list[str]:
    """A row's cells (made without enrichment) with the enrichment columns filled."""
    for at, value in zip(ENRICHED_AT, enrichment.cells(), strict=True):
        cells[at] = value
    return cells


@functools.lru_cache(maxsize=256)
def _utc_text(second: int) -> str:
    """The report's timestamp of a second (records come in runs within one second). A
    damaged capture's time can lie outside what the platform's gmtime takes (years past
    9999, a negative second): clamped to the last second it can show, never an error."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second))
    except (OverflowError, OSError, ValueError):
        return "9999-12-31 23:59:59" if second > 0 else "1970-01-01 00:00:00"


def safe_cell(value: str) -> str:
    """Control characters escaped (stund ends SOFTWARE with a NUL), and a cell a
    spreadsheet would run as a formula defused (OWASP: prefix a quote). A formula may hide
    behind leading spaces (spreadsheets trim them) or start with a look-alike of = + - @
    (full-width, small, superscript: some spreadsheets normalise them)."""
    value = printable(value)
    return "'" + value if starts_formula(value) else value


def starts_formula(value: str) -> bool:
    """Whether a spreadsheet could take this cell for a formula."""
    return value[:1] in _FORMULA_FIRST or value.lstrip()[:1] in _FORMULA_FIRST


def csv_line(cells: Iterable[str]) -> str:
    """The CSV line of a row's cells (COLUMNS order), each made safe (see safe_cell)."""
    cells = list(cells)
    line = ",".join(cells)
    # The usual row, checked whole: every cell printable, none starting a formula, no comma
    # or quote inside one. Then no cell changes and none needs quoting, so this is
    # csv.writer's line; a scan writing a row per answer spends much of its time here.
    if (
        line.isprintable()
        and '"' not in line
        and line.count(",") == _SEPARATORS
        and not line.startswith((*_FORMULA_START, " "))
        and not any(mark in line for mark in _FORMULA_AFTER_COMMA)
        and (line.isascii() or not _LOOKALIKE.search(line))
    ):
        return line + "\n"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


def csv_field(value: str) -> str:
    """One cell as csv_line writes it inside a row: made safe, then quoted if need be."""
    safe = safe_cell(value)
    if not safe:
        return ""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([safe])
    return out.getvalue()[:-1]


class CSVWriter:
    """The Shadowserver CSV, a header then one line per record, flushed per line unless
    ``autoflush`` is off (the scan's sniffer flushes four times a second)."""

    def __init__(self, stream: IO[str], autoflush: bool = True) -> None:
        self.stream = stream
        self.autoflush = autoflush
        csv.writer(stream, lineterminator="\n").writerow(COLUMNS)
        stream.flush()

    def write(self, record: Record) -> None:
        self.write_cells(record.row().values())

    def write_cells(self, cells: Iterable[str]) -> None:
        """One row from its cells in COLUMNS order (see row_cells), made safe here."""
        self.write_line(csv_line(cells))

    def write_line(self, line: str) -> None:
        """One row already made by :func:`csv_line` (or to its rules: ``stunscan.scan.rows``)."""
        self.stream.write(line)
        if self.autoflush:
            self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


class JSONLinesWriter:
    """One JSON object per record and line, flushed as CSVWriter is."""

    def __init__(self, stream: IO[str], autoflush: bool = True) -> None:
        self.stream = stream
        self.autoflush = autoflush

    def write(self, record: Record) -> None:
        self.stream.write(json_text(record.as_json()) + "\n")
        if self.autoflush:
            self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


def open_output(stack: ExitStack, target: str) -> IO[str]:
    """Standard output for '-', else the file (closed with ``stack``), UTF-8, CSV-safe."""
    if target == "-":
        return sys.stdout
    return stack.enter_context(open(target, "w", encoding="utf-8", newline=""))
