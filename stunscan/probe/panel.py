"""``stunscan probe``'s panel: the requests and answers of one host, the NAT behaviour, the
verdict."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stunscan.probe.nat import mapped_address
from stunscan.probe.why import why
from stunscan.render.budget import budget_group
from stunscan.render.cells import cell, endpoint
from stunscan.render.messages import attributes_table, response_label


def variants_table(report: Any) -> Table:
    """One row per request sent: size asked, size answered, amplification, RTT, from where."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    for header, justify in (
        ("variant", "left"),
        ("", "left"),
        ("sent", "right"),
        ("answer", "left"),
        ("bytes", "right"),
        ("amp", "right"),
        ("RTT", "right"),
        ("note", "left"),
    ):
        table.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for result in report.results:
        exchange = result.exchange
        note: list[str] = []
        if exchange.sent > 1:
            note.append(f"sent {exchange.sent} times")
        if exchange.moved:
            note.append(f"from {endpoint(exchange.source)}")
        if exchange.stray:
            note.append("stray: " + ", ".join(f"{n} {why}" for why, n in exchange.stray.items()))
        if exchange.message is None:
            answer = Text(exchange.failure or "no answer", style="yellow")
            row: list[Any] = [answer, "", "", ""]
        else:
            answer = cell(response_label(exchange.message))
            factor = exchange.amplification or 0.0
            row = [
                answer,
                str(len(exchange.answer)),
                Text(f"{factor:.2f}", style="bold red" if factor > 1 else "green"),
                f"{exchange.rtt * 1000:.1f} ms" if exchange.rtt is not None else "",
            ]
        table.add_row(
            result.variant,
            exchange.transport,
            str(len(exchange.request)),
            *row,
            cell("; ".join(note)),
        )
    return table


def nat_table(nat: Any) -> Table:
    """RFC 5780's tests, then what they tell of the path's mapping and filtering."""
    table = Table.grid(padding=(0, 2))
    for label, exchange in nat.tests:
        if exchange.message is None:
            seen = Text(exchange.failure or "no answer", style="yellow")
        else:
            mapped = mapped_address(exchange)
            shown = str(mapped) if mapped is not None else "no mapped address"
            seen = cell(f"mapped {shown}, answered from {endpoint(exchange.source)}")
        table.add_row(cell(f"{label} -> {endpoint(exchange.target)}"), seen)
    if nat.nat is not None:
        table.add_row("NAT", "none (mapped address is our own)" if not nat.nat else "yes")
    table.add_row("mapping", nat.mapping or "-")
    table.add_row("filtering", nat.filtering or "-")
    for note in nat.notes:
        table.add_row("note", cell(note))
    return table


def probe_panel(report: Any) -> Panel:
    """One host: the requests and answers, every attribute of each kind of answer, the NAT
    behaviour if asked, and the verdict."""
    parts: list[Any] = [variants_table(report)]
    shown_types: set[int] = set()
    for result in report.results:
        message = result.exchange.message
        if message is None or message.msg_type in shown_types:
            continue
        shown_types.add(message.msg_type)
        heading = f"{result.variant} over {result.exchange.transport}: {message.type_name}"
        parts += [cell(heading, "bold"), attributes_table(message)]
    if report.nat is not None:
        parts += [Text("NAT behaviour (RFC 5780)", style="bold"), nat_table(report.nat), Text("")]
    reason = why(report)
    if reason is not None:
        heading = (
            f"Why it amplifies ({reason.result.variant}:"
            f" {reason.budget.response_size} bytes / {reason.budget.request_size})"
        )
        parts += [Text(heading, style="bold"), budget_group(reason.budget, reason.advice)]
    verdict = report.verdict()
    style = "bold red" if verdict.startswith("AMPLIFIER") else "bold"
    if report.enrichment is not None and (where := _where(report.enrichment)):
        parts.append(cell(where, "dim"))
    parts.append(Text(verdict, style=style))
    title = report.target.given
    if title != str(report.target):
        title += f" ({report.target})"
    return Panel(Group(*parts), title=cell(title), title_align="left")


def _where(enrichment: Any) -> str:
    """'US, Region, City; AS64500 Example; node01.example.com (ptr); sector' or ''."""
    place = enrichment.place
    parts = [", ".join(p for p in (place.geo, place.region, place.city) if p), place.as_text()]
    if enrichment.hostname:
        parts.append(f"{enrichment.hostname} ({enrichment.hostname_source})")
    if enrichment.sector:
        parts.append(f"{enrichment.sector} (NAICS {enrichment.naics})")
    return "; ".join(p for p in parts if p)
