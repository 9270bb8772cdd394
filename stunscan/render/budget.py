"""The amplification budget and the advice, for people: a table of the answer's parts with
their share of the factor, then the settings that would lower it."""

from __future__ import annotations

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from stunscan.advice import Advice
from stunscan.budget import NEEDED, REMOVABLE, Budget, minimum_line
from stunscan.render.cells import cell

_STYLES = {NEEDED: "green", REMOVABLE: "bold yellow"}


MAX_SHOWN_PARTS = 50
"""Parts listed one by one; the rest of a message with thousands of attributes is summed
in one row (as the explanation shows its first 50 attributes,
``render.messages.MAX_EXPLAINED_ATTRIBUTES``), so the table stays small."""


def budget_table(plan: Budget) -> Table:
    """One row per part (the first :data:`MAX_SHOWN_PARTS`): bytes, share of the factor,
    needed or not and why."""
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    table.add_column("part", no_wrap=True)
    table.add_column("bytes", justify="right")
    table.add_column(f"of {plan.factor:.2f}x", justify="right")
    table.add_column("verdict")
    table.add_column("why", overflow="fold")
    for part in plan.parts[:MAX_SHOWN_PARTS]:
        table.add_row(
            cell(part.name),
            str(part.size),
            f"{part.share:.2f}",
            Text(part.verdict, style=_STYLES.get(part.verdict, "")),
            cell(part.why),
        )
    rest = plan.parts[MAX_SHOWN_PARTS:]
    if rest:
        table.add_row(
            f"{len(rest)} more parts",
            str(sum(p.size for p in rest)),
            f"{sum(p.share for p in rest):.2f}",
            "",
            "",
        )
    table.add_row(
        "total", str(plan.response_size), f"{plan.factor:.2f}", "", f"/ {plan.request_size} sent"
    )
    return table


def budget_group(plan: Budget, advice: Advice | None = None) -> Group:
    """The table, the minimum, and the advice if any."""
    parts: list[object] = [budget_table(plan)]
    if plan.known:
        parts.append(
            Text(
                f"needed: {plan.minimum_size} bytes = {plan.minimum_factor:.2f}x; "
                + minimum_line(plan.ipv6, plan.request_size)
            )
        )
    else:
        parts.append(Text("not a Binding success: parts are not judged", style="dim"))
    if advice is not None:
        parts.append(Text("How to lower it", style="bold"))
        parts += [cell(f"- {line}") for line in advice.lines()]
    return Group(*parts)  # type: ignore[arg-type]
