"""Records for people: the responding servers side by side, and the report's summary."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stunscan.render.cells import address_text, cell, check_mark
from stunscan.render.messages import response_label
from stunscan.text import endpoint_text, printable

RECORD_COLUMNS = (
    # header, justify, least width (numbers are never split; the rest folds if it must)
    ("server", "left", None),
    ("response", "left", None),
    ("MAPPED", "left", None),
    ("XOR-MAPPED", "left", None),
    ("SOFTWARE", "left", None),
    ("FINGERPRINT", "left", None),
    ("bytes", "right", 5),
    ("amp", "right", 5),
)


def records_table(records: list[Any], title: str) -> Table:
    """Responding servers side by side: MAPPED next to XOR-MAPPED, SOFTWARE, FINGERPRINT,
    amplification (marked * where measured against the 20-byte reference probe)."""
    table = Table(title=title, header_style="bold", title_justify="left")
    for header, justify, least in RECORD_COLUMNS:
        table.add_column(header, justify=justify, overflow="fold", min_width=least)  # type: ignore[arg-type]
    for record in records:
        mapped, xor = record.addresses()
        message = record.message
        amplification = f"{record.amplification:.2f}" + ("" if record.request_size else "*")
        response = cell(response_label(message), "red" if message.malformed else "")
        server = endpoint_text(record.ip, record.port)
        table.add_row(
            cell(f"{server}/{record.protocol}"),
            response,
            cell(address_text(mapped)),
            cell(address_text(xor)),
            cell(record.software()),
            check_mark(message.fingerprint),
            str(record.response_size),
            amplification,
        )
    return table


def report_rows(
    grid: Table, summary: Any, servers_note: str = "", amplification_note: str = ""
) -> None:
    """The report's own figures (servers per family, mean and median amplification, top
    SOFTWARE), the same lines for a capture (``stunscan pcap``) and a scan."""

    def factor(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    def noted(text: str, note: str) -> str:
        return f"{text} {note}" if note else text

    servers = f"IPv4 {summary.servers_ipv4}, IPv6 {summary.servers_ipv6}"
    grid.add_row("servers", noted(servers, servers_note))
    amplification = (
        f"mean {factor(summary.mean_amplification)}, median {factor(summary.median_amplification)}"
    )
    grid.add_row("amplification", noted(amplification, amplification_note))
    software = ", ".join(f"{printable(name)} ({count})" for name, count in summary.top_software)
    grid.add_row("top SOFTWARE", Text(software or "-"))


def summary_panel(stats: Any, summary: Any, left_out: str = "") -> Panel:
    """What the capture held, in the report's own terms: the servers counted are those
    answering an unauthenticated request; ``left_out`` says which responders were not."""
    grid = Table.grid(padding=(0, 2))
    grid.add_row("frames read", str(stats.frames))
    grid.add_row(
        "STUN messages",
        f"{stats.stun_messages} (udp {stats.udp_messages}, tcp {stats.tcp_messages};"
        f" classic {stats.classic_messages}, ChannelData {stats.channel_data},"
        f" malformed {stats.malformed})",
    )
    grid.add_row(
        "requests / responses",
        f"{stats.requests} / {stats.responses} (paired {stats.paired}, unanswered"
        f" {stats.unanswered}, unsolicited {stats.unsolicited}; indications {stats.indications})",
    )
    report_rows(
        grid,
        summary,
        servers_note="(answering without credentials)",
        amplification_note="(one factor per server; * in the table: against the 20-byte"
        " reference probe)",
    )
    skipped = (
        f"fragments {stats.fragments}, not IP {stats.not_ip},"
        f" TCP bytes dropped {stats.tcp_bytes_dropped}; ICMP unreachable"
        f" {stats.icmp_unreachable} ({stats.icmp_quoting_stun} quoting STUN)"
    )
    if left_out:
        grid.add_row("not reported", Text(left_out))
    grid.add_row("skipped", skipped)
    return Panel(grid, title="summary", title_align="left", expand=False)
