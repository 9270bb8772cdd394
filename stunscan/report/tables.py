"""The report's figures as rich tables, readable at 80 columns.

Every cell that came from a CSV (SOFTWARE, geo, file names...) is untrusted: it goes in as
a ``rich.text.Text`` (never parsed as markup) after ``stunscan.text.printable`` escaped its
control characters, and long ones are cut so a table keeps its shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from stunscan.text import endpoint_text, printable

CELL_WIDTH = 32
BAR_WIDTH = 24


def cell(value: Any, width: int = CELL_WIDTH) -> Text:
    """A cell from the data: escaped, cut to ``width``, never markup."""
    if value is None or value == "":
        return Text("-", style="dim")
    text = printable(str(value))
    if len(text) > width:
        text = text[: width - 1] + "…"
    return Text(text)


def number(value: Any, digits: int = 2) -> Text:
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, int):
        return Text(f"{value:,}")
    return Text(f"{value:,.{digits}f}")


def share(value: float | None) -> Text:
    return Text("-" if value is None else f"{value * 100:.1f}%")


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold", show_edge=False)
    for index, name in enumerate(columns):
        table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
    return table


def summary_table(result: dict[str, Any]) -> Table:
    table = _table("Accessible STUN servers", "family", "servers", "mean ampl.", "median", "max")
    for row in result["families"]:
        table.add_row(
            row["family"],
            number(row["servers"]),
            number(row["mean_amplification"]),
            number(row["median_amplification"]),
            number(row["max_amplification"]),
        )
    return table


def percentile_table(result: dict[str, Any]) -> Table:
    points = ("min", "p25", "p50", "p75", "p90", "p99", "max")
    table = _table("Amplification percentiles", "family", *points)
    for row in result["percentiles"]:
        table.add_row(row["family"], *(number(row[p]) for p in points))
    return table


def histogram_table(result: dict[str, Any]) -> Table:
    table = _table("Amplification (server-days per bin)", "bin", "IPv4", "IPv6", "")
    bins = result["histogram"]["bins"]
    largest = max((b["ipv4"] + b["ipv6"] for b in bins), default=0) or 1
    for item in bins:
        low, high = item["low"], item["high"]
        label = f"{low:.1f}+" if high is None else f"{low:.1f}-{high:.1f}"
        bar = "█" * max(1, round(BAR_WIDTH * (item["ipv4"] + item["ipv6"]) / largest))
        table.add_row(label, number(item["ipv4"]), number(item["ipv6"]), Text(bar, "cyan"))
    return table


def ranking_table(title: str, key: str, label: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = _table(title, label, "servers", "share")
    for row in rows:
        table.add_row(cell(row[key]), number(row["servers"]), share(row["share"]))
    return table


def software_table(result: dict[str, Any]) -> Table:
    table = _table("Top SOFTWARE", "SOFTWARE", "servers", "share", "mean ampl.")
    for row in result["top_software"]:
        table.add_row(
            cell(row["software"]),
            number(row["servers"]),
            share(row["share"]),
            number(row["mean_amplification"]),
        )
    return table


def ports_table(result: dict[str, Any]) -> Table:
    table = _table("Ports and protocols", "port", "protocol", "servers", "share")
    for row in result["ports"]:
        table.add_row(
            number(row["port"]) if row["port"] is None else Text(str(row["port"])),
            cell(row["protocol"]),
            number(row["servers"]),
            share(row["share"]),
        )
    fingerprint = result["fingerprint"]
    total = fingerprint["present"] + fingerprint["absent"]
    for name in ("present", "absent"):
        count = fingerprint[name]
        table.add_row(
            Text(f"FINGERPRINT {name}"), "", number(count), share(count / total if total else None)
        )
    return table


def days_table(result: dict[str, Any]) -> Table:
    table = _table("Servers per day", "day", "IPv4", "IPv6")
    for row in result["per_day"]:
        table.add_row(cell(row["day"]), number(row["ipv4"]), number(row["ipv6"]))
    churn = result.get("churn")
    if churn:
        table.caption = (
            f"{churn['first_day']} to {churn['last_day']}: {churn['new']:,} new,"
            f" {churn['gone']:,} gone, {churn['still']:,} still present"
        )
        table.caption_justify = "left"
    return table


def compare_table(comparison: dict[str, Any], limit: int) -> Table:
    counts = comparison["counts"]
    table = _table(
        f"OLD -> NEW: {counts['new']:,} new, {counts['gone']:,} gone,"
        f" {counts['changed']:,} changed, {counts['same']:,} same",
        "host",
        "status",
        "ampl. old",
        "new",
        "SOFTWARE (new)",
    )
    table.columns[1].justify = table.columns[4].justify = "left"
    differing = [h for h in comparison["hosts"] if h["status"] != "same"]
    shown = differing[:limit]
    if len(differing) > limit:
        table.caption = f"the first {limit:,} of {len(differing):,} shown; --json lists them all"
        table.caption_justify = "left"
    for host in shown:
        where = endpoint_text(printable(str(host["ip"])), host["port"])
        table.add_row(
            cell(f"{where}/{host['protocol']}", 40),
            Text(host["status"], style=_STATUS_STYLE.get(host["status"], "")),
            number(host["amplification_old"]),
            number(host["amplification_new"]),
            cell(host["software_new"] if host["status"] != "gone" else host["software_old"], 20),
        )
    return table


_STATUS_STYLE = {"new": "red", "gone": "green", "changed": "yellow"}


def bad_rows_text(result: dict[str, Any]) -> Text | None:
    bad = result["bad_rows"]
    if not bad:
        return None
    parts = ", ".join(f"{count:,} {reason}" for reason, count in bad.items())
    return Text(f"{sum(bad.values()):,} bad rows left out: {parts}", style="yellow")


def report_view(result: dict[str, Any], comparison: dict[str, Any] | None, limit: int) -> Group:
    """Everything, in the order an analyst reads it."""
    files = len(result["files"])
    head = Text(
        f"{result['rows']:,} rows from {files:,} file{'s' if files != 1 else ''},"
        f" {result['servers']:,} servers over {result['days']:,} day"
        f"{'s' if result['days'] != 1 else ''}"
    )
    parts: list[RenderableType] = [head]
    bad = bad_rows_text(result)
    if bad is not None:
        parts.append(bad)
    if result["missing_columns"]:
        parts.append(Text("columns absent: " + ", ".join(result["missing_columns"]), style="dim"))
    parts += [
        summary_table(result),
        percentile_table(result),
        histogram_table(result),
        ranking_table("Top countries", "geo", "geo", result["top_countries"]),
        ranking_table("Top ASes", "asn", "asn", result["top_ases"]),
        software_table(result),
        ports_table(result),
    ]
    if result["per_day"]:
        parts.append(days_table(result))
    if comparison is not None:
        parts.append(compare_table(comparison, limit))
    spaced: list[RenderableType] = []
    for part in parts:
        spaced += [part, Text("")]
    return Group(*spaced[:-1])


def show(console: Console, result: dict[str, Any], comparison: dict[str, Any] | None,
         limit: int) -> None:  # fmt: skip
    console.print(report_view(result, comparison, limit))


def verify_table(results: Iterable[Any]) -> Table:
    """``stunscan verify``'s hosts (``stunscan.report.verify.Checked``)."""
    table = _table("Hosts of the report, asked again", "host", "status", "then", "now", "detail")
    table.columns[1].justify = table.columns[4].justify = "left"
    for result in results:
        listed = result.listed
        where = endpoint_text(printable(listed.ip), listed.port)
        table.add_row(
            cell(f"{where}/{listed.protocol}", 40),
            Text(result.status, style=_VERIFY_STYLE.get(result.status, "")),
            number(listed.amplification),
            number(result.amplification_now),
            cell(result.detail, 30),
        )
    return table


_VERIFY_STYLE = {"open": "red", "changed": "yellow", "closed": "green"}
