"""What a scan shows a person: the plan, a live progress line, the summary.

Progress is read from the sender's own counters and the sniffer's shared-memory mirror; it
never touches the probes or answers themselves.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stunscan.render.records import report_rows
from stunscan.scan.sender import SendStats
from stunscan.scan.sniffer import COUNTERS, ReceiveStats

_RECEIVED = COUNTERS.index("received")
_VALID = COUNTERS.index("valid")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ScanProgress:
    """Sent, received, valid, hit rate, the phase (sending, cooling down N s, stopping),
    the sending rate and the ETA, as one line. Once sending ends the rate is the sender's
    own figure (the summary's), not sent / time-since-start falling through the cooldown."""

    def __init__(
        self, senders: Sequence[int], counters: Sequence[int], expected_targets: int
    ) -> None:
        self.senders = senders
        """Per sender: probes sent, targets done (shared memory)."""
        self.counters = counters
        self.expected = max(expected_targets, 1)
        self.started = time.perf_counter()
        self.rate: float | None = None
        """The sending rate once sending ended."""
        self.cooldown_until: float | None = None
        self.stopped = False

    def sending_ended(self, rate: float) -> None:
        self.rate = rate

    def cooling(self, seconds: float) -> None:
        """The cooldown begins: count down ``seconds``."""
        self.cooldown_until = time.perf_counter() + seconds

    def stopping(self) -> None:
        """Ctrl-C: sending stops (the cooldown still runs unless cut short)."""
        self.stopped = True

    def phase(self) -> str:
        now = time.perf_counter()
        if self.cooldown_until is not None:
            left = max(self.cooldown_until - now, 0.0)
            cooling = f"cooling down {left:.0f} s"
            return f"stopping: {cooling}" if self.stopped else cooling
        return "stopping" if self.stopped else "sending"

    def line(self) -> str:
        sent, targets = sum(self.senders[0::2]), sum(self.senders[1::2])
        elapsed = time.perf_counter() - self.started
        rate = self.rate if self.rate is not None else sent / elapsed if elapsed > 0 else 0.0
        received, valid = self.counters[_RECEIVED], self.counters[_VALID]
        hit = valid / targets if targets else 0.0
        done = targets / self.expected
        text = (
            f"{self.phase()} · sent {sent:,} ({done:.1%} of {self.expected:,} targets) ·"
            f" received {received:,} · valid {valid:,} · hit rate {hit:.2%} ·"
            f" sending {rate:,.0f} pkt/s"
        )
        if self.rate is None and not self.stopped:
            per_target = elapsed / targets if targets else 0.0
            eta = _duration((self.expected - targets) * per_target) if targets else "-"
            text += f" · ETA {eta}"
        return text

    def __rich__(self) -> Text:
        return Text(self.line())


def scan_header(
    plan: Any, options: Any, routes: dict[int, Any], ports: tuple[int, int], rate: float
) -> str:
    """One line before sending: what, from where, how fast, with which seed."""
    via = ", ".join(f"IPv{v} via {r.interface} from {r.source}" for v, r in sorted(routes.items()))
    source_ports = str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}"
    shard = f", shard {options.shard} of {options.shards}" if options.shards > 1 else ""
    pace = f"{rate:,.0f} pkt/s" if rate > 0 else "unlimited rate"
    return (
        f"stunscan: scanning {plan.space.addresses:,} addresses x {len(plan.space.ports)} ports"
        f" ({plan.requested - plan.space.addresses:,} blocklisted or excluded){shard};"
        f" probe {options.probe} x{options.probes}; {via}, source port {source_ports};"
        f" {pace}; seed {plan.seed}"
    )


def scan_summary(
    sent: SendStats,
    received: ReceiveStats,
    summary: Any,
    plan: Any,
    options: Any,
    seen_as: str = "",
) -> Panel:
    """The scan in the report's own terms, and what was sent, received and dropped;
    ``seen_as`` says once the address the servers saw (every MAPPED-ADDRESS is ours)."""
    grid = Table.grid(padding=(0, 2))
    elapsed = sent.finished - sent.started
    grid.add_row(
        "sent",
        f"{sent.sent:,} probes to {sent.targets:,} targets in {elapsed:.2f} s"
        f" ({sent.rate:,.0f} pkt/s){'; send failures ' + str(sent.failed) if sent.failed else ''}"
        f"{' (interrupted)' if sent.interrupted else ''}",
    )
    grid.add_row(
        "received",
        f"{received.received:,} packets: valid {received.valid:,}"
        f" (from another port {received.moved}), duplicates {received.duplicates},"
        f" bad transaction ID {received.bad_id}, echoed requests {received.echoed},"
        f" not STUN {received.not_stun}",
    )
    grid.add_row(
        "ICMP unreachable",
        f"port {received.icmp_port_unreachable}, other {received.icmp_other_unreachable}",
    )
    if received.kernel_dropped:
        grid.add_row(
            Text("kernel drops", style="bold red"),
            f"{received.kernel_dropped:,} frames the receive ring had no room for (answers"
            " lost: scan again with a lower --rate)",
        )
    else:
        grid.add_row("kernel drops", "0 (every frame the filter passed was read)")
    hit = received.valid / sent.targets if sent.targets else 0.0
    report_rows(grid, summary, servers_note=f"(hit rate {hit:.2%})")
    validation = (
        "address and port only (the report's all-zero transaction ID)"
        if options.probe == "shadowserver"
        else "keyed transaction ID"
    )
    grid.add_row("validation", validation)
    if seen_as:
        grid.add_row("seen as", seen_as)
    shard = f"shard {options.shard} of {options.shards}, " if options.shards > 1 else ""
    grid.add_row("order", f"{shard}seed {plan.seed} (--seed to repeat it)")
    return Panel(grid, title="scan summary", title_align="left", expand=False)
