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
    ("country", "left", None),
)


def records_table(records: list[Any], title: str) -> Table:
    """Responding servers side by side: MAPPED next to XOR-MAPPED, SOFTWARE, FINGERPRINT,
    amplification (marked * where measured against the 20-byte reference probe)."""
    table = Table(title=title, header_style="bold", title_justify="left")
    for header, justify, least in RECORD_COLUMNS:
        table.add_column(header, justify=justify, overflow="fold", min_width=least)  # type: ignore[arg-type]
    enriched = [r.enrichment for r in records if r.enrichment is not None]
    with_as = any(e.place.as_text() for e in enriched)
    with_host = any(e.hostname for e in enriched)
    if with_as:
        table.add_column("AS", overflow="fold")
    if with_host:
        table.add_column("hostname", overflow="fold")
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
            *_place_cells(record.enrichment, with_as, with_host),
        )
    return table


def _place_cells(enrichment: Any, with_as: bool, with_host: bool) -> list[Text]:
    """The country of a row's server, its AS and hostname where any row has one."""
    if enrichment is None:
        return [Text("")] * (1 + with_as + with_host)
    cells = [cell(enrichment.place.geo)]
    if with_as:
        cells.append(cell(enrichment.place.as_text()))
    if with_host:
        cells.append(cell(enrichment.hostname))
    return cells


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
    for label, top in (("top countries", summary.top_countries), ("top ASes", summary.top_ases)):
        if top:
            grid.add_row(label, Text(", ".join(f"{printable(n)} ({c})" for n, c in top)))
    if summary.enrichment_note:
        grid.add_row("enrichment", Text(printable(summary.enrichment_note), style="dim"))


def summary_panel(stats: Any, summary: Any) -> Panel:
    """What the capture held, in the report's own terms."""
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
        amplification_note="(one factor per server; * in the table: against the 20-byte"
        " reference probe)",
    )
    skipped = (
        f"fragments {stats.fragments}, not IP {stats.not_ip},"
        f" TCP bytes dropped {stats.tcp_bytes_dropped}; ICMP unreachable"
        f" {stats.icmp_unreachable} ({stats.icmp_quoting_stun} quoting STUN)"
    )
    grid.add_row("skipped", skipped)
    return Panel(grid, title="summary", title_align="left", expand=False)
