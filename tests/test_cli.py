"""The command line: decode and explain on real inputs, clean errors, escaping, fast help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from stunscan.cli import app
from stunscan.display import printable
from stunscan.layers import STUN, make_attribute

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
    result = runner.invoke(app, ["decode", "--json", vector["hex"]])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    decoded = json.loads(line)
    assert decoded["type_name"] == "Binding Success Response"
    assert decoded["fingerprint"] is True
    assert decoded["malformed"] == []
    names = [a["name"] for a in decoded["attributes"]]
    assert names == ["SOFTWARE", "XOR-MAPPED-ADDRESS", "MESSAGE-INTEGRITY", "FINGERPRINT"]
    assert decoded["attributes"][1]["value"] == "192.0.2.1:32853"


@needs_corpus
def test_decode_capture_folder_marks_malformed() -> None:
    result = runner.invoke(app, ["decode", "--json", str(CORPUS / "pcaps" / "zeek")])
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
    result = runner.invoke(app, ["explain", "--probe", "binding"], env={"COLUMNS": "250"})
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
    result = runner.invoke(app, ["decode", "--json", str(path)])
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [bool(row["malformed"]) for row in rows] == [False, False, True]
    assert "truncated header: 10 bytes" in rows[2]["malformed"][0]
    assert result.exit_code == 0
    assert "Traceback" not in result.output
