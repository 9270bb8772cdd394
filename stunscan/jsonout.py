"""The one JSON writer of every command (pcap, probe, scan, decode): a value -> one line.

Text goes out as UTF-8 (readable), except what a terminal or an editor would act on
rather than show: ``json.dumps`` escapes C0 controls but, with ``ensure_ascii=False``,
writes DEL, C1 controls (U+009B is a CSI on some terminals), bidi controls (U+202E,
U+2066...) and line separators raw. Those, and lone surrogates (a file name that is not
UTF-8), are written as ``\\uXXXX`` escapes here: still valid JSON, decoding to the same
string, and harmless on a terminal (``cat out.jsonl``, ``jq``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from stunscan.text import UNSAFE

_ESCAPED = re.compile(f"[{UNSAFE}\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any) -> str:
    """``value`` as one line of JSON, without a newline, unsafe code points escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return text if text.isprintable() else _ESCAPED.sub(_escape, text)
