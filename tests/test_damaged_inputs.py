"""Every damaged input of the corpus, through decode, explain and pcap: no traceback, what
was read before the damage, one warning line naming the file, exit 1 only when nothing
was found."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stunscan.capture.files import CaptureReader, is_capture
from stunscan.cli import app

from corpus import CORPUS

runner = CliRunner()
DAMAGED = sorted(CORPUS.glob("damaged/*")) if CORPUS.is_dir() else []
CRASHED_BEFORE = {
    # Scapy_Exception in decode / explain, struct.error in pcap, before the one pipeline
    "header-10.pcap",
    "magic-only.pcap",
    "ng-shb-len-0.pcapng",
    "ng-shb-len-13.pcapng",
    "ng-shb-len-ffffffff.pcapng",
    "ng-shb-only-10.pcapng",
    "ng-shb-only-8.pcapng",
    "ng-bom-junk.pcapng",
    "ng-idb-len-12.pcapng",
    "ng-epb-len-12.pcapng",
    "ng-epb-len-20.pcapng",
    "ng-spb-len-12.pcapng",
}


def _is_capture(path: Path) -> bool:
    return is_capture(path.read_bytes()[:4])


def _problem(path: Path) -> str | None:
    reader = CaptureReader(path)
    for _ in reader:
        pass
    return reader.problem


def test_the_damaged_corpus_is_there() -> None:
    assert CRASHED_BEFORE <= {p.name for p in DAMAGED}


@pytest.mark.parametrize("command", ["decode", "explain"])
@pytest.mark.parametrize("path", DAMAGED, ids=[p.name for p in DAMAGED])
def test_decode_and_explain_meet_damage_with_one_warning(command: str, path: Path) -> None:
    result = runner.invoke(app, [command, str(path)], env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    shown = result.stdout.strip()
    if path.stat().st_size == 0 or path.suffix == ".md":
        # nothing invented: an empty file, or text that is not a message, holds none
        assert result.exit_code == 1 and not shown
        assert len(lines) == 1 and str(path) in lines[0], lines
        return
    if not _is_capture(path):
        assert result.exit_code == 0 and shown and not lines  # a raw or hex message
        return
    problem = _problem(path)
    if problem is not None or path.name in CRASHED_BEFORE:
        assert problem is not None, "these files are damaged"
        assert len(lines) == 1 and lines[0] == f"stunscan: warning: {problem}"
        assert str(path) in lines[0]
    else:
        assert len(lines) <= 1 and all("no STUN messages found" in line for line in lines)
    assert result.exit_code == (0 if shown else 1)


@pytest.mark.parametrize("path", [p for p in DAMAGED if p.stat().st_size], ids=str)
def test_pcap_meets_damage_with_one_warning(path: Path) -> None:
    result = runner.invoke(app, ["pcap", str(path)], env={"COLUMNS": "200"})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if not _is_capture(path):
        assert result.exit_code == 2
        assert lines == [f"stunscan: {path} is not a pcap or pcapng capture"]
        return
    assert result.exit_code == 0
    problem = _problem(path)
    assert lines == ([f"stunscan: warning: {problem}"] if problem else [])


def test_an_escape_in_a_damaged_file_name_never_reaches_the_terminal(tmp_path: Path) -> None:
    hostile = tmp_path / "evil\x1b[2Jname.pcap"
    shutil.copy(CORPUS / "damaged" / "truncated-mid-record.pcap", hostile)
    for command in ("decode", "explain", "pcap"):
        result = runner.invoke(app, [command, str(hostile)], env={"COLUMNS": "300"})
        assert "\x1b" not in result.output, command
        assert "evil\\x1b[2Jname.pcap" in result.stderr, command


def test_a_section_header_block_length_is_capped(tmp_path: Path) -> None:
    """A 400 MB Section Header Block is corruption, not something to read into memory."""
    path = tmp_path / "huge-shb.pcapng"
    length = 400 << 20
    path.write_bytes(
        b"\x0a\x0d\x0d\x0a"
        + struct.pack("<I", length)
        + b"\x4d\x3c\x2b\x1a"
        + struct.pack("<HHq", 1, 0, -1)
        + bytes(1 << 16)
    )
    reader = CaptureReader(path)
    assert list(reader) == []
    assert reader.problem is not None
    assert f"corrupt section header block (length {length})" in reader.problem


def test_short_pcapng_blocks_stop_reading_with_a_reason() -> None:
    for name in ("ng-idb-len-12", "ng-epb-len-12", "ng-epb-len-20", "ng-spb-len-12"):
        problem = _problem(CORPUS / "damaged" / f"{name}.pcapng")
        assert problem is not None and "too short" in problem, name
