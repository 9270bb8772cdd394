"""Text for people: what the network sent made safe to show (one rule for the terminal and
the CSV), and host:port written the one way, brackets around IPv6."""

from __future__ import annotations


def printable(text: str) -> str:
    """Replace control and format characters (ESC, CR, bidi overrides...) with escapes."""
    if text.isprintable():  # the usual case, and fast: every character escaped below is not
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if (
            code < 0x20
            or 0x7F <= code < 0xA0
            or code in (0x200E, 0x200F)
            or 0x202A <= code <= 0x202E
            or 0x2066 <= code <= 0x2069
        ):
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def endpoint_text(host: str, port: int) -> str:
    """'192.0.2.1:3478' or '[2001:db8::1]:3478'."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
