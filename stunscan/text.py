"""Text for people: what the network sent made safe to show (one rule for the terminal and
the CSV), and host:port written the one way, brackets around IPv6."""

from __future__ import annotations

import re

UNSAFE = (
    "\x00-\x1f\x7f-\x9f"  # C0 and C1 controls, DEL (U+009B is a CSI on some terminals)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # every bidi control
    "\u2028\u2029"  # line and paragraph separators
)
"""The code points never shown as they are: a character class (regular expression)."""
_UNSAFE = re.compile(f"[{UNSAFE}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Replace control and format characters (ESC, CR, bidi controls, line separators...)
    with escapes."""
    if text.isprintable():  # the usual case, and fast: every character escaped is not
        return text
    return _UNSAFE.sub(_escape, text)


def endpoint_text(host: str, port: int) -> str:
    """'192.0.2.1:3478' or '[2001:db8::1]:3478'."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
