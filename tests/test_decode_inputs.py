"""One rule for what decode and explain read: hex (of any length, tried before any path),
raw and hex-text message files, captures (gzipped too, by magic number), folders, stdin;
`--json PATH` as in pcap, probe and scan; `explain --probe` takes probe's variants."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stunscan import protocol as proto
from stunscan.cli import app
from stunscan.layers import STUN, make_attribute
from stunscan.probe.variants import VARIANTS

from corpus import CORPUS, PROJECT, needs_corpus

runner = CliRunner()


def _response(software: str = "inputs test") -> bytes:
    return bytes(
        STUN(
            type="Binding Success Response",
            attributes=[
                make_attribute("XOR-MAPPED-ADDRESS", address="192.0.2.1", port=32853),
                make_attribute("SOFTWARE", value=software),
                make_attribute("FINGERPRINT"),
            ],
        )
    )


def _rows(result) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_long_hex_is_hex_not_a_path() -> None:
    """256+ hex digits once crashed in Path.is_dir (name too long); 200,000 must work (a
    message of 100,000 bytes: its first 65,555 are the message, the rest is extra)."""
    message = _response("x" * 2000)
    assert len(message.hex()) > 256
    (row,) = _rows(runner.invoke(app, ["decode", "--json", "-", message.hex()]))
    assert row["hex"] == message.hex() and row["malformed"] == [] and row["frame"] is None
    huge = (message + bytes(100_000 - len(message))).hex()
    assert len(huge) == 200_000
    (row,) = _rows(runner.invoke(app, ["decode", "--json", "-", huge]))
    assert row["type_name"] == "Binding Success Response"
    assert row["malformed"] == [proto.extra_bytes_problem(100_000 - len(message))]


def test_hex_with_colons_spaces_and_prefix() -> None:
    message = _response()
    spaced = "0x" + ":".join(f"{b:02x}" for b in message)
    (row,) = _rows(runner.invoke(app, ["decode", "--json", "-", spaced]))
    assert row["hex"] == message.hex()


def test_a_file_named_like_hex_is_read_as_the_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    message = _response()
    (tmp_path / "cafe").write_bytes(message)
    (row,) = _rows(runner.invoke(app, ["decode", "--json", "-", "cafe"]))
    assert row["origin"] == "cafe" and row["hex"] == message.hex()


@pytest.mark.parametrize("command", ["decode", "explain"])
def test_an_empty_argument_is_a_one_line_usage_error(command: str) -> None:
    result = runner.invoke(app, [command, ""])
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("stunscan: ") and "empty argument" in line


@pytest.mark.parametrize("command", ["decode", "explain"])
def test_an_empty_file_holds_no_message(command: str, tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    result = runner.invoke(app, [command, str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert str(path) in line and "empty" in line
    assert "Binding" not in result.output


def test_message_files_raw_and_hex_text(tmp_path: Path) -> None:
    message = _response()
    raw = tmp_path / "message.bin"
    raw.write_bytes(message)
    text = tmp_path / "message.txt"
    text.write_text(" ".join(f"{b:02x}" for b in message[:10]) + "\n" + message[10:].hex(":"))
    rows = _rows(runner.invoke(app, ["decode", "--json", "-", str(raw), str(text)]))
    assert [r["hex"] for r in rows] == [message.hex(), message.hex()]
    assert [r["origin"] for r in rows] == [str(raw), str(text)]


def test_stdin_takes_raw_bytes_hex_text_or_a_capture() -> None:
    message = _response()
    for given in (message, message.hex().encode() + b"\n"):
        (row,) = _rows(runner.invoke(app, ["decode", "--json", "-", "-"], input=given))
        assert row["hex"] == message.hex() and row["origin"] == "stdin"
    capture = (PROJECT / "pcaps" / "coturn-udp.pcap").read_bytes()
    from_file = _rows(
        runner.invoke(app, ["decode", "--json", "-", str(PROJECT / "pcaps" / "coturn-udp.pcap")])
    )
    for given in (capture, gzip.compress(capture)):
        rows = _rows(runner.invoke(app, ["decode", "--json", "-", "-"], input=given))
        assert [{**r, "origin": None} for r in rows] == [{**r, "origin": None} for r in from_file]
        assert len(rows) >= 2 and {r["origin"] for r in rows} == {"stdin"}


def test_gzipped_captures_in_a_folder_are_found_by_magic(tmp_path: Path) -> None:
    source = PROJECT / "pcaps" / "coturn-tcp.pcap"
    (tmp_path / "deep").mkdir()
    zipped = tmp_path / "deep" / "no-telling-name.dat"
    zipped.write_bytes(gzip.compress(source.read_bytes()))
    (tmp_path / "notes.txt.gz").write_bytes(gzip.compress(b"not a capture"))  # skipped
    result = runner.invoke(app, ["decode", "--json", "-", str(tmp_path)])
    assert result.stderr == ""
    rows = _rows(result)
    plain = _rows(runner.invoke(app, ["decode", "--json", "-", str(source)]))
    assert [r["hex"] for r in rows] == [r["hex"] for r in plain] and rows
    result = runner.invoke(app, ["pcap", "--json", "-", "--all-messages", str(zipped)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == sum(r["kind"] == proto.STUN_MESSAGE for r in rows)


def test_a_cut_gzip_stream_is_one_warning(tmp_path: Path) -> None:
    data = gzip.compress((PROJECT / "pcaps" / "coturn-udp.pcap").read_bytes())
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(data[: len(data) - 40])
    for command in ("decode", "pcap"):
        result = runner.invoke(app, [command, str(path)])
        assert "Traceback" not in result.output and result.exit_code in (0, 1)
        warnings = [line for line in result.stderr.splitlines() if "warning" in line]
        assert len(warnings) == 1 and str(path) in warnings[0], result.stderr


def test_json_takes_a_path_and_never_overwrites_a_capture(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    capture = PROJECT / "pcaps" / "stund-classic.pcap"
    result = runner.invoke(app, ["decode", "--json", str(out), str(capture)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and any(r["kind"] == proto.CLASSIC_MESSAGE for r in rows)
    assert [r["frame"] for r in rows] == sorted(r["frame"] for r in rows)
    assert "frame" in result.stdout  # panels still on the terminal
    copy = tmp_path / "a.pcap"
    copy.write_bytes(capture.read_bytes())
    result = runner.invoke(app, ["decode", "--json", str(copy), str(capture)])
    assert result.exit_code == 2 and "not overwritten" in result.stderr
    assert copy.read_bytes() == capture.read_bytes()


def test_json_carries_the_context() -> None:
    rows = _rows(
        runner.invoke(app, ["decode", "--json", "-", str(PROJECT / "pcaps" / "coturn-ipv6.pcapng")])
    )
    first = rows[0]
    for key in ("frame", "time", "src", "sport", "dst", "dport", "transport", "quoted_in_icmp"):
        assert key in first
    assert first["frame"] >= 1 and ":" in str(first["src"]) and first["quoted_in_icmp"] is False


@pytest.mark.parametrize("name", [n for n in VARIANTS])
def test_explain_takes_every_probe_variant(name: str) -> None:
    result = runner.invoke(app, ["explain", "--probe", name], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "message type" in result.stdout and f"the {name} probe" in result.stdout


def test_explain_classic_probe_has_no_cookie() -> None:
    result = runner.invoke(app, ["explain", "--probe", "classic"], env={"COLUMNS": "250"})
    assert "128 bits: classic RFC 3489" in result.stdout
    assert "0x2112a442: marks" not in result.stdout


@needs_corpus
def test_explain_a_capture_shows_each_message_in_context() -> None:
    path = CORPUS / "pcaps" / "ndpi" / "stun.pcap"
    result = runner.invoke(app, ["explain", str(path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "quoted in ICMP" in result.stdout
    assert "TURN ChannelData 0x" in result.stdout  # noted, not failed on
    assert result.stdout.count("message type") > 100


@needs_corpus
def test_sixteen_thousand_attributes_decode_completely() -> None:
    """attrs-16383.bin: every attribute in the JSON; the panel and the explanation show a
    bounded number and say how many more (time and memory: benchmarks/decode_large.py)."""
    path = CORPUS / "damaged" / "attrs-16383.bin"
    data = path.read_bytes()
    (row,) = _rows(runner.invoke(app, ["decode", "--json", "-", str(path)]))
    attributes = row["attributes"]
    assert len(attributes) == 16_383
    expected = list(proto.iter_attributes(data))
    assert [int(str(a["type"]), 16) for a in attributes] == [tlv.code for tlv in expected]
    assert all(a["length"] == 0 and a["hex"] == "" for a in attributes)
    assert row["hex"] == data.hex() and row["malformed"] == []
    result = runner.invoke(app, ["decode", str(path)], env={"COLUMNS": "200"})
    assert "16,183 more attributes not shown" in result.stdout
    result = runner.invoke(app, ["explain", str(path)], env={"COLUMNS": "200"})
    assert "16,333 more attributes not shown" in result.stdout  # MAX_EXPLAINED_ATTRIBUTES
    assert f"up to byte {len(data)}" in result.stdout
