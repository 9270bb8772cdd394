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

import duckdb

from stunscan.record import COLUMNS

SUFFIXES = (".csv", ".csv.gz", ".zip")
MEMORY_LIMIT = "1GB"
"""DuckDB's own cap; past it, it spills to a temporary folder (out of core)."""

INTEGER_COLUMNS = frozenset(
    {"port", "asn", "naics", "message_length", "mapped_port", "xor_mapped_port", "response_size"}
)
"""Columns typed as integers (an unreadable cell becomes NULL there, the row is kept)."""

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

    @property
    def bad_rows(self) -> int:
        return sum(self.bad.values())


def connect(temp_dir: str | None = None, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a memory cap and a folder to spill to."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    con.execute("SET preserve_insertion_order = false")
    if temp_dir:
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
        when = f"TRY_CAST(replace(replace({raw}, 'T', ' '), 'Z', '') AS TIMESTAMP)"
        return f"{when} AS ts, ({raw} IS NOT NULL AND {when} IS NULL) AS timestamp_unreadable"
    if name == "protocol":
        return f"lower({raw}) AS protocol"
    return f"{raw} AS {name}"


def load(
    con: duckdb.DuckDBPyConnection, paths: Iterable[str], table: str, stack: ExitStack
) -> Loaded:
    """Read every report file of ``paths`` into ``table`` (good rows only) and count the bad.

    The table has the report's columns typed (``ts`` for the timestamp), plus ``day`` and
    ``family`` (4 or 6). Each file is read on its own, by its own header."""
    files = expand(paths, stack)
    loaded = Loaded(table, [label for _, label in files])
    missing = set(COLUMNS)
    created = False
    for number, (name, label) in enumerate(files):
        columns = _columns(name, label)
        present = set(columns)
        if "ip" not in present:
            raise InputError(f"{label}: no 'ip' column: not a report CSV")
        missing -= present
        _load_file(con, name, label, columns, f"{table}_{number}", loaded)
        if created:
            con.execute(f"INSERT INTO {table} SELECT * FROM {table}_{number}")
            con.execute(f"DROP TABLE {table}_{number}")
        else:
            con.execute(f"ALTER TABLE {table}_{number} RENAME TO {table}")
            created = True
    loaded.missing_columns = [c for c in COLUMNS if c in missing]
    count = con.execute(f"SELECT count(*) FROM {table}").fetchone()
    loaded.rows = int(count[0]) if count else 0
    loaded.bad = {reason: n for reason, n in loaded.bad.items() if n}
    return loaded


def _read(columns: list[str]) -> str:
    """DuckDB's read of one file (its path the parameter) with the columns its header
    named: the report's own names kept, any other called ``extra_N`` (a header's text never
    enters the SQL). Lines with another number of cells go to the rejects table."""
    names = ", ".join(f"'{name}': 'VARCHAR'" for name in columns)
    return (
        f"read_csv(?, header = true, auto_detect = false, columns = {{{names}}},"
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


def _load_file(
    con: duckdb.DuckDBPyConnection,
    name: str,
    label: str,
    columns: list[str],
    table: str,
    loaded: Loaded,
) -> None:
    """One file into ``table``: typed, its bad rows counted in ``loaded`` and left out."""
    present = set(columns)
    typed = ", ".join(_typed(column, present) for column in COLUMNS)
    for flagged in ("amplification", "timestamp"):
        if flagged not in present:
            typed += f", false AS {flagged}_unreadable"
    tests = [(reason, test) for reason, column, test in BAD_REASONS if column in present]
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE typed_rows AS SELECT *,"
            f" CAST(ts AS DATE) AS day,"
            f" CASE WHEN regexp_full_match(ip, '[0-9]{{1,3}}(\\.[0-9]{{1,3}}){{3}}') THEN 4"
            f" WHEN regexp_full_match(ip, '[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*') THEN 6"
            f" END::TINYINT AS family"
            f" FROM (SELECT {typed} FROM {_read(columns)})",
            [name],
        )
    except duckdb.Error as exc:
        raise InputError(f"cannot read {label}: {str(exc).splitlines()[0]}") from None
    rejected = con.execute("SELECT count(DISTINCT line) FROM report_rejects").fetchone()
    _add(loaded, "wrong number of columns", int(rejected[0]) if rejected else 0)
    con.execute("DROP TABLE report_rejects")
    con.execute("DROP TABLE report_scans")
    if tests:
        blame = " ".join(f"WHEN {test} THEN '{reason}'" for reason, test in tests)
        for reason, count in con.execute(
            f"SELECT CASE {blame} ELSE NULL END AS reason, count(*) FROM typed_rows GROUP BY reason"
        ).fetchall():
            if reason is not None:
                _add(loaded, str(reason), int(count))
    good = " AND ".join(f"NOT coalesce({test}, false)" for _, test in tests) or "true"
    con.execute(
        f"CREATE TEMP TABLE {table} AS SELECT *"
        f" EXCLUDE (amplification_unreadable, timestamp_unreadable)"
        f" FROM typed_rows WHERE {good}"
    )
    con.execute("DROP TABLE typed_rows")


def _add(loaded: Loaded, reason: str, count: int) -> None:
    loaded.bad[reason] = loaded.bad.get(reason, 0) + count
