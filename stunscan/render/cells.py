"""The small pieces every renderer uses: escaped cells, hex previews, check marks.

Everything a remote host chose goes through :func:`printable` into ``rich.text.Text``, so
no control character, ANSI escape or rich markup it sends reaches the terminal as anything
but visible text.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from stunscan.text import endpoint_text, printable


def cell(text: str, style: str = "") -> Text:
    """Text from the network (or derived from it), escaped for the terminal."""
    return Text(printable(text), style=style)


def hex_preview(data: bytes, limit: int = 24) -> str:
    shown = data[:limit].hex(" ")
    return shown + (" …" if len(data) > limit else "")


def check_mark(ok: bool | None) -> Text:
    if ok is None:
        return Text("absent", style="dim")
    return Text("valid", style="green") if ok else Text("INVALID", style="bold red")


def address_text(address: Any) -> str:
    return str(address) if address is not None else ""


def endpoint(address: tuple[str, int] | None) -> str:
    if address is None:
        return ""
    return endpoint_text(*address)
