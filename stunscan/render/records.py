"""Records for people: the responding servers side by side, and the report's summary."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stunscan.render.cells import address_text, cell, check_mark
from stunscan.render.fit import Column, fit_table
from stunscan.render.messages import response_label
from stunscan.text import endpoint_text, printable


def _server(record: Any) -> Text:
    return cell(f"{endpoint_text(record.ip, record.port)}/{record.protocol}")


def _response(record: Any) -> Text:
    message = record.message
    return cell(response_label(message), "red" if message.malformed else "")


def _amplification(record: Any) -> str:
    if record.direction != "response":
        return ""
    return f"{record.amplification:.2f}" + ("" if record.request_size else "*")


def _merged_mapped(record: Any) -> Text:
    mapped, xor = record.addresses()
    if mapped is not None and xor is not None and mapped != xor:
        return cell(f"{xor} (MAPPED {mapped})", "yellow")
    return cell(address_text(xor or mapped))


def saw_another(record: Any) -> bool:
    """Whether MAPPED or XOR-MAPPED names another endpoint than the one we sent from."""
    return any(a is not None and str(a) != record.client for a in record.addresses())


def _as_sent(record: Any) -> Text:
    """Whether the server saw us where we are (a scan knows its own address): a NAT, a
    rewriting middlebox or a lying server shows up here."""
    own = record.client
    differs = [
        f"{name} {address}"
        for name, address in zip(("MAPPED", "XOR-MAPPED"), record.addresses(), strict=True)
        if address is not None and str(address) != own
    ]
    if not differs:
        return Text("as sent", style="dim")
    return cell("; ".join(differs), "bold yellow")


def record_columns(records: list[Any], own_address: bool = False) -> list[Column]:
    """The columns of the responders' table, most important first. With ``own_address``
    (a scan: every MAPPED is the scanner's own address) one column flags the servers that
    saw another address instead of showing the same address twice per row."""
    columns = [
        Column("server", _server, 100, kind="address"),
        Column("response", _response, 90, kind="text", floor=len("Allocate error 401")),
    ]
    if any(r.role not in ("server", None) or r.direction != "response" for r in records):
        columns.append(Column("role", lambda r: r.role or r.direction, 60))
    if own_address:
        columns.append(Column("mapped", _as_sent, 50, kind="address"))
    else:
        columns += [
            Column("MAPPED", lambda r: cell(address_text(r.addresses()[0])), 40, kind="address"),
            Column(
                "XOR-MAPPED", lambda r: cell(address_text(r.addresses()[1])), 50, kind="address"
            ),
            Column(
                "MAPPED / XOR-MAPPED",
                _merged_mapped,
                50,
                kind="address",
                replaces=("MAPPED", "XOR-MAPPED"),
            ),
        ]
    columns += [
        Column("SOFTWARE", lambda r: cell(r.software()), 30, kind="text"),
        Column("FINGERPRINT", lambda r: check_mark(r.message.fingerprint), 20),
        Column("bytes", lambda r: str(r.response_size), 70, justify="right"),
        Column("amp", _amplification, 80, justify="right"),
    ]
    enriched = [r.enrichment for r in records if getattr(r, "enrichment", None) is not None]
    if any(e.place.geo for e in enriched):
        columns.append(Column("country", lambda r: cell(_place(r).geo if _place(r) else ""), 45))
    if any(e.place.as_text() for e in enriched):
        columns.append(
            Column("AS", lambda r: cell(_place(r).as_text() if _place(r) else ""), 25, kind="text")
        )
    if any(e.hostname for e in enriched):
        columns.append(
            Column(
                "hostname",
                lambda r: cell(r.enrichment.hostname if r.enrichment else ""),
                15,
                kind="text",
            )
        )
    return columns


def _place(record: Any) -> Any:
    """The place (country, AS) enrichment found for a row's server, None without."""
    enrichment = getattr(record, "enrichment", None)
    return None if enrichment is None else enrichment.place


def records_table(
    records: list[Any], title: str, width: int = 160, own_address: bool = False
) -> Table:
    """Responders side by side: MAPPED next to XOR-MAPPED, SOFTWARE, FINGERPRINT,
    amplification (marked * where measured against the 20-byte reference probe), fitted to
    ``width`` (see stunscan.render.fit)."""
    return fit_table(title, record_columns(records, own_address), records, width)


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
    evicted = stats.tcp_flows_evicted
    budget = f" ({evicted} flows evicted to stay within --tcp-buffer)" if evicted else ""
    skipped = (
        f"fragments {stats.fragments}, not IP {stats.not_ip},"
        f" TCP bytes dropped {stats.tcp_bytes_dropped}{budget}; ICMP unreachable"
        f" {stats.icmp_unreachable} ({stats.icmp_quoting_stun} quoting STUN)"
    )
    if left_out:
        grid.add_row("not reported", Text(left_out))
    grid.add_row("skipped", skipped)
    return Panel(grid, title="summary", title_align="left", expand=False)
