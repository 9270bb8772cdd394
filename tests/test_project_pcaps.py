"""The project's own captures (pcaps/, made by pcaps/make_pcaps.py from coturn and stund on
loopback) analysed end to end: what the README's main job shows."""

from __future__ import annotations

import csv
import io

from stunscan.capture.files import CaptureReader
from stunscan.pcap.analyzer import Analyzer
from stunscan.record import CSVWriter, Record

from corpus import PROJECT

PCAPS = sorted((PROJECT / "pcaps").glob("*.pcap*"))


def analyse(all_messages: bool = False) -> tuple[Analyzer, list[Record]]:
    analyzer = Analyzer(all_messages=all_messages)
    records = [r for path in PCAPS for frame in CaptureReader(path) for r in analyzer.feed(frame)]
    analyzer.finish()
    return analyzer, records


def test_the_captures_are_there() -> None:
    names = {p.name for p in PCAPS}
    assert names == {
        "coturn-udp.pcap",
        "coturn-tcp.pcap",
        "coturn-ipv6.pcapng",
        "turn-allocate-401.pcap",
        "stund-classic.pcap",
    }


def test_every_request_is_answered_and_every_server_found() -> None:
    analyzer, records = analyse()
    stats = analyzer.stats
    assert stats.requests == stats.responses == stats.paired > 0
    assert (stats.unanswered, stats.unsolicited, stats.malformed) == (0, 0, 0)
    servers = {(r.ip, r.port, r.protocol) for r in records}
    assert ("127.0.0.1", 3478, "udp") in servers and ("::1", 3478, "udp") in servers
    assert ("127.0.0.1", 3478, "tcp") in servers
    assert ("127.0.0.2", 3479, "udp") in servers  # stund answering a CHANGE-REQUEST
    for record in records:
        mapped, xor = record.addresses()
        assert mapped is not None and xor is not None and mapped == xor
        assert record.software().startswith(("Coturn-", "Vovida"))
        assert record.amplification > 1


def test_change_request_answers_are_paired_and_flagged() -> None:
    _, records = analyse(all_messages=True)
    moved = [r for r in records if r.extra.get("answered_from_another_address")]
    assert {(r.ip, r.port) for r in moved} == {("127.0.0.1", 3479), ("127.0.0.2", 3479)}
    assert all(r.request_size for r in moved)


def records_of(name: str) -> list[Record]:
    analyzer = Analyzer(all_messages=True)
    return [r for frame in CaptureReader(PROJECT / "pcaps" / name) for r in analyzer.feed(frame)]


def test_allocate_401_outgrows_every_binding_answer_of_the_same_coturn() -> None:
    """The report's point about TURN: an Allocate without credentials draws a 401 with
    REALM and NONCE, larger than the answer to the report's own 20-byte Binding probe."""
    allocate = records_of("turn-allocate-401.pcap")
    unauthorized = next(r for r in allocate if r.message.type_name == "Allocate Error Response")
    assert unauthorized.message.get("ERROR-CODE").decoded[0] == 401
    assert unauthorized.message.get("REALM").decoded == "example.org"
    assert unauthorized.message.get("NONCE").decoded
    bindings = [
        r.response_size
        for r in records_of("coturn-udp.pcap")
        if r.message.type_name == "Binding Success Response" and r.request_size == 20
    ]
    assert bindings and unauthorized.response_size > max(bindings)
    assert unauthorized.request_size == 28  # header + REQUESTED-TRANSPORT: paired


def test_stund_software_nul_is_escaped_in_the_csv() -> None:
    _, records = analyse()
    stund = next(r for r in records if r.software().startswith("Vovida"))
    assert stund.software().endswith("\x00")  # as sent
    out = io.StringIO()
    CSVWriter(out).write(stund)
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["software"] == "Vovida.org 0.97\\x00"


def test_the_servers_table_names_the_error_code() -> None:
    from rich.console import Console

    from stunscan.render.records import records_table

    records = records_of("turn-allocate-401.pcap")
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(records_table(records, "servers"))
    text = console.export_text()
    assert "Allocate error 401" in text and "Allocate success" in text
    assert "127.0.0.1:3478/udp" in text  # addresses are not folded on a wide console
