"""What a server chose reaches no terminal, spreadsheet or JSON reader as anything it could
act on: every bidi control (U+061C, U+200E/F, U+202A-E, U+2066-9), the line and paragraph
separators, C0/C1 controls and DEL are escaped in the tables (pcap, probe) and the CSV, and
written as \\u escapes by the one JSON writer (pcap, probe, scan, decode)."""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path

import pytest
from fake_responders import binding_answer, responder
from typer.testing import CliRunner

from stunscan import protocol as proto
from stunscan.cli import app
from stunscan.jsonout import json_text
from stunscan.text import printable

runner = CliRunner()
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
SEPARATORS = "\u2028\u2029"
CONTROLS = "\x1b\x07\x7f\x85\x9b"
UNSAFE = BIDI + SEPARATORS + CONTROLS
SOFTWARE = "srv " + "".join(f"{ch}x" for ch in UNSAFE) + " caf\u00e9 \u4e2d"
"""A SOFTWARE value holding every unsafe code point (and harmless non-ASCII text)."""
FAST = ["--timeout", "1", "--rto", "0.1"]


@pytest.mark.parametrize("char", UNSAFE)
def test_printable_escapes_each(char: str) -> None:
    shown = printable(f"a{char}b")
    assert char not in shown and shown.startswith("a\\") and shown.endswith("b")


def test_printable_keeps_ordinary_text() -> None:
    assert printable("caf\u00e9 \u4e2d \u05d0") == "caf\u00e9 \u4e2d \u05d0"


@pytest.mark.parametrize("char", [*UNSAFE, "\ud800"])
def test_the_json_writer_escapes_each_and_stays_valid(char: str) -> None:
    value = {"software": f"a{char}b\u00e9", "n": 1}
    line = json_text(value)
    assert char not in line and "\n" not in line
    assert f"\\u{ord(char):04x}" in line
    assert json.loads(line) == value
    assert "\u00e9" in line  # readable UTF-8 stays


def _assert_none_raw(text: str) -> None:
    found = sorted({f"U+{ord(ch):04X}" for ch in text if ch in UNSAFE})
    assert not found, f"unescaped: {found}"


def _answer(data: bytes, count: int) -> list[bytes]:
    return [binding_answer(data, (proto.SOFTWARE, SOFTWARE.encode()))]


def test_probe_table_csv_and_json_escape_every_unsafe_code_point(tmp_path: Path) -> None:
    out_csv, out_json = tmp_path / "p.csv", tmp_path / "p.jsonl"
    with responder(_answer) as server:
        table = runner.invoke(app, ["probe", server.target, *FAST])
        files = runner.invoke(
            app, ["probe", server.target, *FAST, "--csv", str(out_csv), "--json", str(out_json)]
        )
    assert table.exit_code == 0 and files.exit_code == 0, table.output + files.output
    _assert_none_raw(table.stdout)
    for path in (out_csv, out_json):
        _assert_none_raw(path.read_text(encoding="utf-8"))
    (line,) = out_json.read_text(encoding="utf-8").splitlines()
    software = json.loads(line)["results"][0]["response"]["software"]
    assert software == SOFTWARE  # escaped on the wire of JSON, the same string once read


def _pcap(path: Path, payload: bytes) -> None:
    """A classic pcap of one Ethernet/IPv4/UDP frame from 192.0.2.1:3478."""
    udp = struct.pack("!HHHH", 3478, 40000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2]))  # fmt: skip
    frame = bytes(6) + bytes(5) + b"\x01" + b"\x08\x00" + ip + udp
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    record = struct.pack("<IIII", 1, 0, len(frame), len(frame))
    path.write_bytes(header + record + frame)


def test_pcap_table_csv_and_json_escape_every_unsafe_code_point(tmp_path: Path) -> None:
    capture, out_csv = tmp_path / "c.pcap", tmp_path / "c.csv"
    _pcap(capture, binding_answer(bytes(20), (proto.SOFTWARE, SOFTWARE.encode())))
    table = runner.invoke(app, ["pcap", str(capture)])
    as_json = runner.invoke(app, ["pcap", "--json", "-", str(capture)])
    runner.invoke(app, ["pcap", "--csv", str(out_csv), str(capture)])
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output + as_json.output
    _assert_none_raw(table.stdout)
    _assert_none_raw(as_json.stdout)
    csv_text = out_csv.read_text(encoding="utf-8")
    _assert_none_raw(csv_text)
    (row,) = list(csv.DictReader(io.StringIO(csv_text)))
    assert row["software"] == printable(SOFTWARE)
    (line,) = [line for line in as_json.stdout.splitlines() if line.startswith("{")]
    assert json.loads(line)["software"] == SOFTWARE


def test_decode_json_escapes_every_unsafe_code_point() -> None:
    message = binding_answer(bytes(20), (proto.SOFTWARE, SOFTWARE.encode()))
    result = runner.invoke(app, ["decode", "--json", "-", message.hex()])
    assert result.exit_code == 0, result.output
    _assert_none_raw(result.stdout)
    (line,) = result.stdout.splitlines()
    names = [a["name"] for a in json.loads(line)["attributes"]]
    assert "SOFTWARE" in names
