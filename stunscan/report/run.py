"""``stunscan report`` end to end: load the CSVs, compute, show, write what was asked."""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import duckdb
from rich.console import Console

from stunscan.report import figures, inputs, tables


@dataclass(slots=True)
class ReportOptions:
    files: list[str]
    compare: tuple[str, str] | None = None
    json_out: str | None = None
    html_out: str | None = None
    parquet_out: str | None = None
    top: int = 10
    quiet: bool = False


def run_report(options: ReportOptions, console: Console) -> dict[str, Any]:
    """Everything ``stunscan report`` does; InputError for an input that cannot be read
    (or a query DuckDB could not finish), OSError for an output that cannot be written."""
    try:
        return _report(options, console)
    except duckdb.Error as exc:
        raise inputs.InputError(f"DuckDB: {str(exc).splitlines()[0]}") from None


def _report(options: ReportOptions, console: Console) -> dict[str, Any]:
    with ExitStack() as stack:
        spill = stack.enter_context(tempfile.TemporaryDirectory(prefix="stunscan-report-"))
        con = stack.enter_context(inputs.connect(spill))
        comparison = None
        files = list(options.files)
        if options.compare is not None:
            old_path, new_path = options.compare
            old = inputs.load(con, [old_path], "old_rows", stack)
            new = inputs.load(con, [new_path], "new_rows", stack)
            comparison = figures.compare(con, old, new)
            if not files:
                files = [new_path]
        loaded = inputs.load(con, files, "rows", stack)
        result = figures.figures(con, loaded, options.top)
        if comparison is not None:
            result["compare"] = comparison
        if options.parquet_out:
            inputs.export_parquet(con, loaded, options.parquet_out)
        if options.json_out:
            _write_json(options.json_out, result)
        if options.html_out:
            from stunscan.report import page

            with open(options.html_out, "w", encoding="utf-8") as stream:
                stream.write(page.render(result, comparison, options.top * 5))
        if not options.quiet and options.json_out != "-":
            tables.show(console, result, comparison, options.top * 2)
        return result


def _write_json(target: str, result: dict[str, Any]) -> None:
    text = json.dumps(result, ensure_ascii=False, indent=1, default=str) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(target, "w", encoding="utf-8") as stream:
            stream.write(text)


@dataclass(slots=True)
class VerifyOptions:
    files: list[str]
    rate: float = 100.0
    parallel: int = 16
    timing: Any = None
    csv_out: str | None = None
    json_out: str | None = None


def run_verify(options: VerifyOptions, console: Console, errors: Console) -> int:
    """Ask every host the reports list again; the number still answering. InputError for
    an unreadable input, OSError for an output that cannot be written."""
    try:
        return _verify(options, console, errors)
    except duckdb.Error as exc:
        raise inputs.InputError(f"DuckDB: {str(exc).splitlines()[0]}") from None


def _verify(options: VerifyOptions, console: Console, errors: Console) -> int:
    from stunscan.probe.exchange import Timing
    from stunscan.record import COLUMNS, csv_line
    from stunscan.report import verify

    with ExitStack() as stack:
        spill = stack.enter_context(tempfile.TemporaryDirectory(prefix="stunscan-verify-"))
        con = stack.enter_context(inputs.connect(spill))
        loaded = inputs.load(con, options.files, "rows", stack)
        listed = [
            verify.Listed(
                str(row["ip"]),
                int(row["port"]),
                str(row["protocol"] or "udp"),
                None if row["amplification"] is None else round(float(row["amplification"]), 2),
                row["software"],
            )
            for row in figures.listed_hosts(con, loaded)
        ]
        con.close()
        bad = tables.bad_rows_text({"bad_rows": loaded.bad})
        if bad is not None:
            errors.print(bad)
        csv_stream = _open(stack, options.csv_out)
        if csv_stream is not None:
            csv_stream.write(csv_line([*COLUMNS, *verify.EXTRA_COLUMNS]))
            csv_stream.flush()

        def written(result: verify.Checked) -> None:
            if csv_stream is not None:
                csv_stream.write(csv_line(result.row()))
                csv_stream.flush()

        results = list(
            verify.verify_all(
                listed, options.timing or Timing(), options.rate, options.parallel, written
            )
        )
        counts = {
            status: sum(r.status == status for r in results)
            for status in (verify.OPEN, verify.CHANGED, verify.CLOSED, verify.UNCHECKED)
        }
        still = counts[verify.OPEN] + counts[verify.CHANGED]
        summary = {
            "listed": len(results),
            "still_open": still,
            "changed": counts[verify.CHANGED],
            "closed": counts[verify.CLOSED],
            "not_checked": counts[verify.UNCHECKED],
            "bad_rows": dict(loaded.bad),
        }
        if options.json_out:
            _write_json(
                options.json_out, {"summary": summary, "hosts": [r.as_json() for r in results]}
            )
        shown = console if "-" not in (options.json_out, options.csv_out) else errors
        shown.print(tables.verify_table(results))
        line = (
            f"{len(results):,} listed: {still:,} still open"
            f" ({counts[verify.CHANGED]:,} of them changed), {counts[verify.CLOSED]:,} closed"
        )
        if counts[verify.UNCHECKED]:
            line += f", {counts[verify.UNCHECKED]:,} not checked"
        shown.print(line, markup=False, highlight=False)
        return still


def _open(stack: ExitStack, target: str | None) -> Any:
    if target is None:
        return None
    if target == "-":
        return sys.stdout
    return stack.enter_context(open(target, "w", encoding="utf-8", newline=""))
