"""Tables that fit the width they are given.

Each column has a priority. When the rows do not fit, columns are merged or left out, the
least important first, and the table's caption says which, once. Addresses (``address``
columns) are never folded at ``ADDRESS_WIDTH`` columns and more: a folded IPv6 address is
two wrong addresses. Text columns (SOFTWARE, response names) fold within a floor width.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

ADDRESS_WIDTH = 120
"""At this width and more, addresses are never folded."""
_TEXT_FLOOR = 12
_ADDRESS_FLOOR = len("255.255.255.255:65535/udp")
_BORDER = 3  # a cell's padding and the rule before it; the table adds one more


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its header, how it justifies and folds, and how much it matters."""

    header: str
    cell: Callable[[Any], Text | str]
    priority: int
    """Higher stays longer."""
    justify: str = "left"
    kind: str = "short"
    """'address' (never folded at ADDRESS_WIDTH and more), 'text' (folds) or 'short'."""
    floor: int = _TEXT_FLOOR
    """A text column's least width (it folds below its content's width, not below this)."""
    replaces: tuple[str, ...] = ()
    """Headers of the columns this one merges (used only when those would not fit)."""


def _width(value: Text | str) -> int:
    text = value.plain if isinstance(value, Text) else value
    return max((len(line) for line in text.splitlines()), default=0)


def fit_table(
    title: str, columns: Sequence[Column], records: Sequence[Any], width: int, what: str = "rows"
) -> Table:
    """A rich table of ``records`` whose columns fit ``width`` (see the module)."""
    merged = {c.header: c for c in columns if c.replaces}
    plain = [c for c in columns if not c.replaces]
    cells = {c.header: [c.cell(r) for r in records] for c in columns}

    def natural(column: Column) -> int:
        return max([len(column.header), *map(_width, cells[column.header])])

    def flexible(column: Column) -> bool:
        return column.kind == "text" or (column.kind == "address" and width < ADDRESS_WIDTH)

    def need(column: Column) -> int:
        """The least room a column takes: its content's, or its floor if it may fold."""
        least = natural(column)
        if column.kind == "address" and width < ADDRESS_WIDTH:  # IPv4 whole, IPv6 folds
            least = min(least, max(_ADDRESS_FLOOR, len(column.header)))
        elif column.kind == "text":
            least = min(least, max(column.floor, len(column.header)))
        return least + _BORDER

    chosen = list(plain)
    notes: list[str] = []
    for merger in merged.values():  # merge first: it keeps what the parts said
        if sum(map(need, chosen)) + 1 <= width:
            break
        parts = [c for c in chosen if c.header in merger.replaces]
        if len(parts) == len(merger.replaces):
            at = chosen.index(parts[0])
            chosen = [c for c in chosen if c not in parts]
            chosen.insert(at, merger)
            notes.append(f"{' and '.join(merger.replaces)} merged")
    dropped: list[str] = []
    while sum(map(need, chosen)) + 1 > width and len(chosen) > 1:
        least = min(chosen, key=lambda c: c.priority)
        chosen.remove(least)
        dropped.append(least.header)
    if dropped:
        notes.append(f"{', '.join(dropped)} left out")
    widths = _share(chosen, [need(c) - _BORDER for c in chosen], [natural(c) for c in chosen],
                    width - 1 - _BORDER * len(chosen))  # fmt: skip
    caption = None
    if notes:
        caption = f"{width} columns: {'; '.join(notes)} (a wider terminal or --csv/--json for all)"
    table = Table(
        title=title,
        header_style="bold",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    for column, size in zip(chosen, widths, strict=True):
        table.add_column(
            column.header,
            justify=column.justify,  # type: ignore[arg-type]
            no_wrap=not flexible(column),
            overflow="fold",
            width=size,
        )
    for index in range(len(records)):
        table.add_row(*(cells[c.header][index] for c in chosen))
    return table


def _share(columns: Sequence[Column], least: list[int], most: list[int], room: int) -> list[int]:
    """Column widths: each at least ``least``, the room left given to the columns that may
    fold, in turn, up to their ``most`` (their content's width)."""
    widths = list(least)
    spare = room - sum(widths)
    growing = [i for i in range(len(columns)) if widths[i] < most[i]]
    while spare > 0 and growing:
        share = max(spare // len(growing), 1)
        for i in list(growing):
            grant = min(share, most[i] - widths[i], spare)
            widths[i] += grant
            spare -= grant
            if widths[i] >= most[i]:
                growing.remove(i)
            if spare <= 0:
                break
    return widths
