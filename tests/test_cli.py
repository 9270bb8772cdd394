"""The command line: decode and explain on real inputs, clean errors, escaping, fast help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stunscan.cli import app
from stunscan.layers import STUN, make_attribute
from stunscan.text import printable

from corpus import CORPUS, needs_corpus, rfc_vectors

runner = CliRunner()


def test_help_does_not_import_scapy() -> None:
    code = "import sys, stunscan.cli; assert 'scapy' not in sys.modules, 'scapy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run(
        [sys.executable, "-m", "stunscan", "--help"], capture_output=True, text=True, check=True
    )
    assert "decode" in result.stdout and "explain" in result.stdout


@needs_corpus
def test_decode_vector_as_json() -> None:
    vector = rfc_vectors()[1]
    result = runner.invoke(app, ["decode", "--json", "-", vector["hex"]])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    decoded = json.loads(line)
    assert decoded["type_name"] == "Binding Success Response"
    assert decoded["fingerprint"] is True
    assert decoded["malformed"] == []
    names = [a["name"] for a in decoded["attributes"]]
    assert names == ["SOFTWARE", "XOR-MAPPED-ADDRESS", "MESSAGE-INTEGRITY", "FINGERPRINT"]
    assert decoded["attributes"][1]["value"] == {"family": 1, "ip": "192.0.2.1", "port": 32853}


@needs_corpus
def test_decode_capture_folder_marks_malformed() -> None:
    result = runner.invoke(app, ["decode", "--json", "-", str(CORPUS / "pcaps" / "zeek")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4
    assert [bool(r["malformed"]) for r in rows] == [False, True, False, True]


def test_decode_rich_output_escapes_hostile_software() -> None:
    hostile = "\x1b[31mEVIL\x1b[0m [bold red]markup[/] \u202eabc"
    data = bytes(
        STUN(
            type="Binding Success Response", attributes=[make_attribute("SOFTWARE", value=hostile)]
        )
    )
    result = runner.invoke(app, ["decode", data.hex()], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "\x1b[31m" not in result.stdout and "\u202e" not in result.stdout
    assert "[bold red]markup[/]" in result.stdout  # shown literally, not interpreted
    assert "\\x1b[31mEVIL" in result.stdout


def test_printable_escapes_control_characters() -> None:
    assert printable("a\x1bb\r\n\x7f\u202e") == "a\\x1bb\\x0d\\x0a\\x7f\\u202e"
    assert printable("Coturn-4.6.1 'Gorst'") == "Coturn-4.6.1 'Gorst'"


def test_explain_shadowserver_probe() -> None:
    result = runner.invoke(app, ["explain"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "magic cookie" in result.stdout and "Binding Request" in result.stdout
    assert "00 00 00 00 00 00 00 00 00 00 00 00" in result.stdout


def test_explain_shows_xor_arithmetic_and_fingerprint_check() -> None:
    result = runner.invoke(app, ["explain", "--probe", "fingerprint"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "FINGERPRINT" in result.stdout and ": valid" in result.stdout
    response = STUN(
        type="Binding Success Response",
        attributes=[make_attribute("XOR-MAPPED-ADDRESS", address="192.0.2.1", port=32853)],
    )
    result = runner.invoke(app, ["explain", bytes(response).hex()], env={"COLUMNS": "250"})
    assert "0xa147 xor 0x2112 = 32853" in result.stdout
    assert "= 192.0.2.1" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decode", "not-a-file-nor-hex"], "neither a readable file nor hex"),
        (["explain", "--probe", "nope"], "unknown probe"),
        (["explain", "4745542f"], "not a STUN message"),
    ],
)
def test_user_errors_are_one_line_and_nonzero(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_truncated_capture_reports_what_it_read_then_one_warning(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from scapy.layers.inet import IP, UDP
    from scapy.utils import wrpcap

    path = tmp_path / "cut.pcap"
    packets = [IP(dst="127.0.0.1") / UDP(sport=40000, dport=3478) / STUN() for _ in range(3)]
    wrpcap(str(path), packets)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    result = runner.invoke(app, ["decode", "--json", "-", str(path)])
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    # the cut record is not a message (pcap reads it the same way): two, then one warning
    assert [bool(row["malformed"]) for row in rows] == [False, False]
    assert [row["frame"] for row in rows] == [1, 2]
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "truncated packet data after 2 packets" in warnings[0]
    assert str(path) in warnings[0]
    assert result.exit_code == 0
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- stunscan pcap


def _lab_capture(tmp_path, software: str = "lab server"):  # type: ignore[no-untyped-def]
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    tid = bytes(range(12))
    request = STUN(type="Binding Request", transaction_id=tid)
    response = STUN(
        type="Binding Success Response",
        transaction_id=tid,
        attributes=[
            make_attribute("MAPPED-ADDRESS", address="198.51.100.20", port=40000),
            make_attribute("XOR-MAPPED-ADDRESS", address="198.51.100.20", port=40000),
            make_attribute("SOFTWARE", value=software),
            make_attribute("FINGERPRINT"),
        ],
    )
    packets = [
        ether
        / IP(src="198.51.100.20", dst="203.0.113.10")
        / UDP(sport=40000, dport=3478)
        / request,
        ether
        / IP(src="203.0.113.10", dst="198.51.100.20")
        / UDP(sport=3478, dport=40000)
        / response,
        ether
        / IP(src="203.0.113.11", dst="198.51.100.20")
        / UDP(sport=3478, dport=40001)
        / response,
    ]
    packets[1].time = 1_700_000_000
    path = tmp_path / "lab.pcap"
    wrpcap(str(path), packets)
    return path, len(bytes(response))


def test_pcap_csv_has_the_report_columns_and_formats(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import csv

    from stunscan.record import COLUMNS

    path, size = _lab_capture(tmp_path)
    result = runner.invoke(app, ["pcap", str(path), "--csv", "-"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert tuple(rows[0]) == COLUMNS and len(COLUMNS) == 28
    first, second = rows
    assert first["timestamp"] == "2023-11-14 22:13:20"
    assert (first["severity"], first["protocol"], first["tag"]) == ("medium", "udp", "stun")
    assert (first["ip"], first["port"]) == ("203.0.113.10", "3478")
    assert first["transaction_id"] == bytes(range(12)).hex() and first["magic_cookie"] == "2112a442"
    assert first["message_type"] == "0101" and first["message_length"] == str(size - 20)
    assert (first["mapped_family"], first["mapped_address"], first["mapped_port"]) == (
        "01",
        "198.51.100.20",
        "40000",
    )
    assert (first["xor_mapped_family"], first["xor_mapped_address"], first["xor_mapped_port"]) == (
        "01",
        "198.51.100.20",
        "40000",
    )
    assert first["software"] == "lab server"
    assert first["fingerprint"].startswith("0x") and len(first["fingerprint"]) == 10
    assert first["response_size"] == str(size)
    assert first["amplification"] == f"{size / 20:.2f}"  # the request was 20 bytes
    assert second["ip"] == "203.0.113.11" and second["amplification"] == f"{size / 20:.2f}"


def test_pcap_csv_defuses_formulas_and_json_explains_the_basis(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, _ = _lab_capture(tmp_path, software="=HYPERLINK(1)")
    out = tmp_path / "out.csv"
    jsonl = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["pcap", str(path), "--csv", str(out), "--json", str(jsonl)])
    assert result.exit_code == 0, result.output
    assert "'=HYPERLINK(1)" in out.read_text()
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["amplification_basis"] for r in rows] == ["request", "reference-probe"]
    assert rows[0]["software"] == "=HYPERLINK(1)"  # JSON keeps the real value
    assert rows[0]["fingerprint_valid"] is True


def test_pcap_terminal_table_and_summary(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, _ = _lab_capture(tmp_path)
    result = runner.invoke(app, ["pcap", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "responding servers: 2" in result.stdout
    assert "203.0.113.10:3478/udp" in result.stdout and "lab server" in result.stdout
    assert "IPv4 2, IPv6 0" in result.stdout
    assert "paired 1" in result.stdout and "unsolicited 1" in result.stdout


def test_pcap_all_messages(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, _ = _lab_capture(tmp_path)
    result = runner.invoke(app, ["pcap", str(path), "--all-messages", "--json", "-"])
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["type_name"] for r in rows] == [
        "Binding Request",
        "Binding Success Response",
        "Binding Success Response",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pcap", "/nonexistent/x.pcap"], "no such file or folder"),
        (["pcap", __file__], "is not a pcap or pcapng capture"),
    ],
)
def test_pcap_user_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_pcap_truncated_capture_warns_once_after_the_results(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path, _ = _lab_capture(tmp_path)
    path.write_bytes(path.read_bytes()[:-5])
    result = runner.invoke(app, ["pcap", str(path), "--csv", "-"])
    assert result.exit_code == 0
    assert len(result.stdout.strip().splitlines()) == 2  # header + the server read before the cut
    assert (
        result.stderr.count("warning") == 1
        and "truncated packet data after 2 packets" in result.stderr
    )


@needs_corpus
def test_pcap_does_not_import_scapy() -> None:
    code = (
        "import sys; from stunscan.cli import app; "
        f"app(['pcap', {str(CORPUS / 'pcaps')!r}, '--csv', '/dev/null'], standalone_mode=False); "
        "assert 'scapy' not in sys.modules, 'scapy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
