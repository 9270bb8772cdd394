"""Report CSVs -> one typed DuckDB table, bad rows counted and set aside, never fatal.

Shadowserver's files and stunscan's own share the report's 28 columns, but a reader must
not depend on their order or on all of them being there: the header decides, extra columns
are ignored, a missing one reads as empty. DuckDB reads the files itself (gzip directly, a
zip's members once extracted to a temporary folder), in parallel and out of core, so a year
of daily files is one query. Every cell is read as text first and typed here with TRY_CAST,
so that a row whose amplification is ``abc`` is a counted bad row, not an abort; a line
with the wrong number of cells is rejected by the parser and counted from its rejects table.
"""

from __future__ import annotations

import csv
import gzip
import tempfile
import zipfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from stunscan.record import COLUMNS
from stunscan.report import queries

SUFFIXES = (".csv", ".csv.gz", ".zip")
MEMORY_LIMIT = "1GB"
"""DuckDB's own cap; past it, it spills to a temporary folder (out of core)."""

INTEGER_COLUMNS = frozenset(
    {"port", "asn", "naics", "message_length", "mapped_port", "xor_mapped_port", "response_size"}
)
"""Columns typed as integers (an unreadable cell becomes NULL there, the row is kept)."""
PAYLOAD_COLUMNS = ("software", "fingerprint", "geo", "asn", "response_size")
"""The columns only the hosts' rankings use: kept as the file's text per server and day,
typed per host (``typed_payload``). With the timestamp, ip, protocol, port and
amplification, the only columns the figures read."""

BAD_REASONS = (
    ("timestamp not a date and time", "timestamp", "timestamp_unreadable"),
    ("ip not an IPv4 or IPv6 address", "ip", "family IS NULL"),
    ("port not 1 to 65535", "port", "port IS NULL OR port < 1 OR port > 65535"),
    (
        "amplification not a number",
        "amplification",
        "amplification_unreadable OR NOT isfinite(amplification) OR amplification < 0",
    ),
)
"""Why a row is left out of the figures (reason, the column it needs, the test), in the
order a row is blamed; a test applies only if its column is in the file. An empty
timestamp or amplification is not wrong (no day, no factor); text that is not one is. A
line with the wrong number of cells is counted first, by the parser."""
DEFAULTS = {"port": "3478", "protocol": "'udp'"}
"""What a file without the column means: the report's own probe went to UDP 3478."""


class InputError(Exception):
    """An input the user named that cannot be read at all (one line, exit 2)."""


@dataclass(slots=True)
class Loaded:
    """What a load put in its table, and what it had to leave out."""

    table: str
    files: list[str]
    rows: int = 0
    bad: dict[str, int] = field(default_factory=dict)
    missing_columns: list[str] = field(default_factory=list)
    sources: list[tuple[str, list[str]]] = field(default_factory=list)
    """Each file read (its path) and the columns its header named."""

    @property
    def bad_rows(self) -> int:
        return sum(self.bad.values())


def connect(temp_dir: str, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap and ``temp_dir`` to spill to (out of core:
    blocks past the cap go there). In memory, not a database file: a file's checkpoints
    and compression made a month of reports a quarter slower (10 million rows: 34.6 s
    against 30.7 s here), and DuckDB spills either way."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET temp_directory = ?", [temp_dir])
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def expand(paths: Iterable[str], stack: ExitStack) -> list[tuple[str, str]]:
    """Files to read as (path, name to show): folders give their report files, zips their
    CSV members (extracted into a temporary folder that ``stack`` removes)."""
    found: list[tuple[str, str]] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            members = sorted(p for p in path.iterdir() if p.is_file() and _is_report(p))
            if not members:
                raise InputError(f"{text}: no .csv, .csv.gz or .zip files in this folder")
            for member in members:
                found.extend(_files_of(member, stack))
        elif path.is_file():
            found.extend(_files_of(path, stack))
        else:
            raise InputError(f"{text}: no such file or folder")
    return found


def _is_report(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def _files_of(path: Path, stack: ExitStack) -> list[tuple[str, str]]:
    """The file itself, or a zip's CSV members extracted."""
    if not path.name.lower().endswith(".zip"):
        return [(str(path), str(path))]
    extracted = []
    try:
        archive = stack.enter_context(zipfile.ZipFile(path))
        names = [n for n in archive.namelist() if n.lower().endswith((".csv", ".csv.gz"))]
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="stunscan-zip-")))
        for number, name in enumerate(names):
            # a member's own name is not trusted as a path: numbered, suffix kept
            suffix = ".csv.gz" if name.lower().endswith(".gz") else ".csv"
            target = folder / f"{number}{suffix}"
            with archive.open(name) as source, target.open("wb") as sink:
                while chunk := source.read(1 << 20):
                    sink.write(chunk)
            extracted.append((str(target), f"{path}:{name}"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path}: not a readable zip ({exc})") from None
    if not extracted:
        raise InputError(f"{path}: the zip holds no .csv file")
    return extracted


def _typed(name: str, present: set[str]) -> str:
    """The SQL expression of one report column, typed, from the raw text columns."""
    if name not in present:
        kind = "INTEGER" if name in INTEGER_COLUMNS else "VARCHAR"
        alias = "ts" if name == "timestamp" else name
        return f"{DEFAULTS.get(name, 'NULL')}::{kind if alias != 'ts' else 'TIMESTAMP'} AS {alias}"
    raw = f"NULLIF(trim(\"{name}\"), '')"
    if name in INTEGER_COLUMNS:
        return f"TRY_CAST({raw} AS INTEGER) AS {name}"
    if name == "amplification":
        number = f"TRY_CAST({raw} AS DOUBLE)"
        return (
            f"{number} AS amplification,"
            f" ({raw} IS NOT NULL AND {number} IS NULL) AS amplification_unreadable"
        )
    if name == "timestamp":
        when = f"TRY_CAST({raw} AS TIMESTAMP)"  # ISO 8601's T and Z included
        return f"{when} AS ts, ({raw} IS NOT NULL AND {when} IS NULL) AS timestamp_unreadable"
    if name == "protocol":
        return f"lower({raw}) AS protocol"
    return f"{raw} AS {name}"


def load(
    con: duckdb.DuckDBPyConnection, paths: Iterable[str], table: str, stack: ExitStack
) -> Loaded:
    """Read every report file of ``paths`` into ``table`` (``queries.GROUPS_TABLE``): one
    good row per server (ip, port, protocol) and day, what its first row that day said,
    and the bad rows with their reason (``bad``).

    Every header is read first (one that names no ip stops the load before any reading);
    then files with the same header go to DuckDB a few at a time, one per thread, a row
    each. The servers listed more than once a day (in one batch, or in several batches'
    files) are merged, a day at a time. Only the columns the figures use are
    read; a cell is typed only as far as the verdict and the figures need."""
    files = expand(paths, stack)
    loaded = Loaded(table, [label for _, label in files])
    missing = set(COLUMNS)
    batches: list[tuple[list[str], list[tuple[str, str]]]] = []
    size = _threads(con)
    for name, label in files:
        columns = _columns(name, label)
        if "ip" not in columns:
            raise InputError(f"{label}: no 'ip' column: not a report CSV")
        missing -= set(columns)
        loaded.sources.append((name, columns))
        if batches and batches[-1][0] == columns and len(batches[-1][1]) < size:
            batches[-1][1].append((name, label))
        else:
            batches.append((columns, [(name, label)]))
    con.execute(queries.GROUPS_TABLE.format(table=table))
    merge: set[Any] = set()
    for number, (columns, batch) in enumerate(batches):
        merge |= _load_batch(con, batch, columns, table, number, loaded)
    merge |= {day for (day,) in con.execute(queries.SHARED_DAYS.format(table=table)).fetchall()}
    for day in sorted(merge, key=lambda day: (day is not None, day)):
        for step in (queries.TWICE, queries.MERGE_DAY, queries.MERGED_AWAY):
            con.execute(step.format(table=table), {"day": day})
    con.execute(f"DROP TABLE IF EXISTS {table}_twice")
    for code, count in con.execute(queries.VERDICTS.format(table=table)).fetchall():
        if code is None:
            loaded.rows = int(count)
        else:
            _add(loaded, BAD_REASONS[int(code) - 1][0], int(count))
    loaded.missing_columns = [c for c in COLUMNS if c in missing]
    loaded.bad = {reason: n for reason, n in loaded.bad.items() if n}
    return loaded


def _threads(con: duckdb.DuckDBPyConnection) -> int:
    found = con.execute("SELECT current_setting('threads')").fetchone()
    return max(1, int(found[0])) if found else 1


def _load_batch(
    con: duckdb.DuckDBPyConnection,
    batch: list[tuple[str, str]],
    columns: list[str],
    table: str,
    number: int,
    loaded: Loaded,
) -> set[Any]:
    """Files with the same header, one per thread, read together into ``table`` as batch
    ``number``, a row each; the days on which the batch lists a server more than once."""
    try:
        con.execute(
            queries.BATCH_ROWS.format(table=table, batch=int(number), read=_rows(columns)),
            {"paths": [name for name, _ in batch]},
        )
    except duckdb.Error as exc:
        labels = ", ".join(label for _, label in batch)
        raise InputError(f"cannot read {labels}: {str(exc).splitlines()[0]}") from None
    rejected = con.execute("SELECT count(DISTINCT (file_id, line)) FROM report_rejects").fetchone()
    _add(loaded, "wrong number of columns", int(rejected[0]) if rejected else 0)
    con.execute("DROP TABLE report_rejects")
    con.execute("DROP TABLE report_scans")
    found = con.execute(queries.DUPLICATE_DAYS.format(table=table, batch=int(number)))
    return {day for (day,) in found.fetchall()}


def _rows(columns: list[str]) -> str:
    """The SQL reading a batch (the files' paths the parameter ``paths``) into the rows the
    grouping needs: ``ts``, ``day``, ip, port, protocol, ``family``, amplification, the
    PAYLOAD_COLUMNS as text, and ``bad`` (the number of the first of BAD_REASONS the row
    fails, or NULL). The same values as ``_select``'s, for less work: a cell is trimmed
    only when DuckDB's cast, which skips the ASCII blanks around it, cannot read it (trim
    also strips Unicode spaces)."""
    present = set(columns)

    def number(name: str, kind: str) -> str:
        if name not in present:
            return f"{DEFAULTS.get(name, 'NULL')}::{kind}"
        return f'coalesce(TRY_CAST("{name}" AS {kind}), TRY_CAST(trim("{name}") AS {kind}))'

    def unreadable(value: str, name: str) -> str:
        """Column ``name``'s cell has text, but not a value (``value`` is NULL)."""
        return f"({value} IS NULL AND trim({name}_text) <> '')"

    def text(name: str) -> str:
        return f'"{name}"' if name in present else "NULL::VARCHAR"

    ip = "NULLIF(trim(\"ip\"), '')"
    protocol = "lower(NULLIF(trim(\"protocol\"), ''))" if "protocol" in present else "'udp'"
    tests = {
        "timestamp": unreadable("ts", "timestamp"),
        "ip": "family IS NULL",
        "port": "port IS NULL OR port < 1 OR port > 65535",
        "amplification": f"{unreadable('amplification', 'amplification')}"
        " OR NOT isfinite(amplification) OR amplification < 0",
    }
    blame = " ".join(
        f"WHEN {tests[column]} THEN {code}"
        for code, (_, column, _) in enumerate(BAD_REASONS, start=1)
        if column in present
    )
    payload = ", ".join(f"{text(name)} AS {name}" for name in PAYLOAD_COLUMNS)
    texts = "".join(f', "{c}" AS {c}_text' for c in ("timestamp", "amplification") if c in present)
    return (
        f"SELECT day, ip, port, protocol, family, ts, amplification, {', '.join(PAYLOAD_COLUMNS)},"
        f" CASE {blame} END::TINYINT AS bad"
        f" FROM (SELECT *, CAST(ts AS DATE) AS day,"
        f" CASE WHEN regexp_full_match(ip, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') THEN 4"
        f" WHEN regexp_full_match(ip, '[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*') THEN 6"
        f" END::TINYINT AS family"
        f" FROM (SELECT {number('timestamp', 'TIMESTAMP')} AS ts, {ip} AS ip,"
        f" {protocol} AS protocol, {number('port', 'INTEGER')} AS port,"
        f" {number('amplification', 'DOUBLE')} AS amplification, {payload}"
        f"{texts} FROM {_read(columns, 'paths')}))"
    )


def typed_payload(alias: str) -> str:
    """The PAYLOAD_COLUMNS of table ``alias`` typed as ``_typed`` types them (the hosts'
    latest rows: ``queries.LATEST``)."""
    typed = []
    for name in PAYLOAD_COLUMNS:
        raw = f"NULLIF(trim({alias}.{name}), '')"
        typed.append(f"TRY_CAST({raw} AS INTEGER) AS {name}" if name in INTEGER_COLUMNS
                     else f"{raw} AS {name}")  # fmt: skip
    return ", ".join(typed)


def export_parquet(con: duckdb.DuckDBPyConnection, loaded: Loaded, path: str) -> None:
    """The good rows with every column of the report, typed, to a Parquet file: the files
    are read again (the figures keep only what they use)."""
    parts = " UNION ALL ".join(
        f"SELECT * EXCLUDE (bad) FROM ({_select(columns, COLUMNS, f'path{n}')}) WHERE bad IS NULL"
        for n, (_, columns) in enumerate(loaded.sources)
    )
    order = ", ".join("ts AS timestamp" if c == "timestamp" else c for c in COLUMNS)
    target = path.replace("'", "''")
    con.execute(
        f"COPY (SELECT {order}, day, family FROM ({parts})) TO '{target}'"
        " (FORMAT parquet, COMPRESSION zstd)",
        {f"path{n}": name for n, (name, _) in enumerate(loaded.sources)},
    )


def _select(columns: list[str], wanted: Iterable[str], parameter: str) -> str:
    """The SQL reading one file (its path the named ``parameter``) into typed ``wanted`` columns,
    ``day``, ``family`` and ``bad`` (why the row is left out, or NULL)."""
    present = set(columns)
    needed = [c for c in COLUMNS if c in set(wanted) or c in ("timestamp", "ip", "port")]
    typed = ", ".join(_typed(column, present) for column in needed)
    for flagged in ("amplification", "timestamp"):
        if flagged not in present:
            typed += f", false AS {flagged}_unreadable"
        elif flagged not in needed:
            typed += ", " + _typed(flagged, present)
    tests = [(reason, test) for reason, column, test in BAD_REASONS if column in present]
    blame = " ".join(f"WHEN {test} THEN '{reason}'" for reason, test in tests)
    return (
        f"SELECT * EXCLUDE (amplification_unreadable, timestamp_unreadable),"
        f" CASE {blame or 'WHEN false THEN NULL'} END AS bad"
        f" FROM (SELECT *, CAST(ts AS DATE) AS day,"
        f" CASE WHEN regexp_full_match(ip, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') THEN 4"
        f" WHEN regexp_full_match(ip, '[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*') THEN 6"
        f" END::TINYINT AS family"
        f" FROM (SELECT {typed} FROM {_read(columns, parameter)}))"
    )


def _read(columns: list[str], parameter: str) -> str:
    """DuckDB's read of files (their paths the parameter) with the columns their header
    named: the report's own names kept, any other called ``extra_N`` (a header's text never
    enters the SQL). Lines with another number of cells go to the rejects table. No
    ``filename`` column: a path per row cost half a CPU second per million rows."""
    names = ", ".join(f"'{name}': 'VARCHAR'" for name in columns)
    return (
        f"read_csv(${parameter}, header = true, auto_detect = false, columns = {{{names}}},"
        " delim = ',', quote = '\"', escape = '\"', ignore_errors = true,"
        " store_rejects = true, rejects_table = 'report_rejects', rejects_scan = 'report_scans')"
    )


def _columns(name: str, label: str) -> list[str]:
    """The columns a file's header names, read here (plain or gzip): a sniffer can guess a
    file with broken lines wrong, and the report's dialect is known."""
    try:
        with open(name, "rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(name, "rt", encoding="utf-8", errors="replace", newline="") as stream:
            line = stream.readline(1 << 20)
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {label}: {exc}") from None
    cells = next(csv.reader([line]), [])
    known = set(COLUMNS)
    columns: list[str] = []
    for number, cell in enumerate(cells):
        text = cell.strip().strip("\ufeff").lower()
        columns.append(text if text in known and text not in columns else f"extra_{number}")
    return columns


def _add(loaded: Loaded, reason: str, count: int) -> None:
    loaded.bad[reason] = loaded.bad.get(reason, 0) + count
