"""``stunscan report`` end to end: load the CSVs, compute, show, write what was asked."""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

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
    """Everything ``stunscan report`` does; InputError for an input that cannot be read,
    OSError for an output that cannot be written."""
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
            figures.export_parquet(con, "rows", options.parquet_out)
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
