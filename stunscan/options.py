"""The numeric options of the commands, checked in one place before anything runs.

Typer turns ``--rate nan`` or ``--cooldown inf`` into floats without a word, and a NaN
compares false with everything: ``rate < 0`` lets it through, and it ends as "no limit" or
as a traceback from ``time.sleep``. Every number a user gives is therefore checked here to
be finite and within a documented range, and a bad one is a one-line usage error (exit 2).
The ranges are what the commands can honour, not what the types can hold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


class OptionError(ValueError):
    """A numeric option out of its range (one line, exit 2)."""


@dataclass(frozen=True, slots=True)
class Range:
    """The values an option takes: ``low``..``high`` inclusive, and ``zero`` as a special
    value with its own meaning (``--rate 0``: as fast as possible) if ``zero_means``."""

    low: float
    high: float
    zero_means: str = ""

    def describe(self) -> str:
        if math.isinf(self.high):
            return f"of at least {_number(self.low)}"
        text = f"from {_number(self.low)} to {_number(self.high)}"
        return f"{text}, or 0 ({self.zero_means})" if self.zero_means else text

    def holds(self, value: float) -> bool:
        if not isinstance(value, int) and not math.isfinite(value):
            return False  # (an int is finite, and may be too large for a float)
        return self.low <= value <= self.high or (bool(self.zero_means) and value == 0)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 1 else f"{value:g}"


# probe
TIMEOUT = Range(0, 3600)
"""Seconds; 0 is RFC 8489's own 39.5 s."""
RTO = Range(0.01, 60)
TRANSMISSIONS = Range(1, 20)
"""RFC 8489's Rc is 7; the schedule doubles each time, so 20 already spans weeks."""
PARALLEL = Range(1, 1024)
# scan
RATE = Range(1, 100_000_000, zero_means="as fast as possible")
"""Packets per second."""
BANDWIDTH = Range(1e3, 1e12)
"""Bits per second: 1K to 1T."""
COOLDOWN = Range(0, 3600)
PROBES = Range(1, 255)
SENDERS = Range(1, 64)
SHARDS = Range(1, 1 << 32)
MAX_TARGETS = Range(0, math.inf)
# pcap, scan
TABLE_ROWS = Range(0, 1_000_000)
WORKERS = Range(0, 64)
TCP_BUFFER_MIB = Range(1, 64 * 1024)
"""``pcap --tcp-buffer``: MiB held for TCP reassembly over all flows."""


def check(name: str, value: float | None, allowed: Range) -> None:
    """Raise OptionError unless ``value`` (None: not given) is finite and in ``allowed``."""
    if value is None or allowed.holds(value):
        return
    raise OptionError(f"--{name} must be a number {allowed.describe()}, not {value!r}")


def check_all(**values: tuple[float | None, Range]) -> None:
    """:func:`check` for each ``name=(value, range)``; underscores in names become dashes."""
    for name, (value, allowed) in values.items():
        check(name.replace("_", "-"), value, allowed)


_BANDWIDTH = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)\s*")
_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


def bits_per_second(text: str) -> float:
    """``--bandwidth``: '10M', '1G', '2500K' or a plain number of bits per second."""
    match = _BANDWIDTH.fullmatch(text)
    if match is None:
        raise OptionError(f"not a bandwidth: {text!r} (10M, 1G...)")
    value = float(match.group(1)) * _SCALE[match.group(2).upper()]
    check("bandwidth", value, BANDWIDTH)
    return value
