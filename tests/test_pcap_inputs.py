"""`stunscan pcap` on awkward inputs and interruptions: Ctrl-C during a parallel run exits
130 with a well-formed CSV and no worker traceback; a FIFO is read as a stream; an
unreadable or damaged file among others is one warning and the rest is analysed; an empty
folder is a warning and exit 1; other special files are named for what they are."""

from __future__ import annotations

import csv
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stunscan.cli import app
from stunscan.pcap.parallel import PARALLEL_MIN_BYTES
from stunscan.record import COLUMNS

from corpus import CORPUS, PROJECT, needs_corpus

sys.path.insert(0, str(PROJECT / "benchmarks"))
from mixed_capture import generate

runner = CliRunner()
GOOD = PROJECT / "pcaps" / "coturn-udp.pcap"


def stunscan(*args: str, **options: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "stunscan", "pcap", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,  # type: ignore[call-overload]
    )


def csv_rows(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows and rows[0] == list(COLUMNS)
    assert all(len(row) == len(COLUMNS) for row in rows), "a row cut short"
    return rows[1:]


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Over the size where the local process pool cuts a file."""
    path = tmp_path_factory.mktemp("inputs") / "large.pcap"
    generate(path, 420_000, seed=3)
    assert path.stat().st_size > PARALLEL_MIN_BYTES
    return path


def children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def test_ctrl_c_during_a_parallel_run(tmp_path: Path, large: Path) -> None:
    out = tmp_path / "rows.csv"
    process = stunscan(str(large), "--workers", "2", "--csv", str(out), start_new_session=True)
    deadline = time.monotonic() + 120
    while len(children(process.pid)) < 2 and process.poll() is None:
        assert time.monotonic() < deadline, "the workers never started"
        time.sleep(0.05)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert "stunscan: warning: interrupted" in stderr
    assert "summary" in stdout
    text = out.read_text()
    assert text.endswith("\n")
    csv_rows(text)


def test_a_fifo_is_read_as_a_stream(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    expected = runner.invoke(app, ["pcap", str(GOOD), "--csv", "-"]).stdout
    process = stunscan(str(fifo), "--csv", "-")
    with fifo.open("wb") as writer:
        writer.write(GOOD.read_bytes())
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout == expected and csv_rows(stdout)


def test_a_fifo_that_is_no_capture_is_one_warning_among_files(tmp_path: Path) -> None:
    fifo = tmp_path / "noise.fifo"
    os.mkfifo(fifo)
    process = stunscan(str(fifo), str(GOOD), "--csv", "-")

    def feed() -> None:
        with fifo.open("wb") as writer:
            writer.write(b"hello, not a capture\n")

    threading.Thread(target=feed, daemon=True).start()
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert f"stunscan: warning: {fifo} is not a pcap or pcapng capture" in stderr
    assert csv_rows(stdout)  # the capture after it was analysed


def test_a_socket_is_named_for_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "control.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        result = runner.invoke(app, ["pcap", str(path)])
    assert result.exit_code == 2
    assert result.stderr == f"stunscan: {path} is a socket, not a capture file\n"


def test_an_unreadable_file_in_a_folder_is_a_warning(tmp_path: Path) -> None:
    folder = tmp_path / "caps"
    folder.mkdir()
    (folder / "a.pcap").write_bytes(GOOD.read_bytes())
    # a file whose first read fails with EIO, for root too; its name holds an escape
    (folder / "b\x1b[31m.pcap").symlink_to("/proc/self/mem")
    result = runner.invoke(app, ["pcap", str(folder), "--csv", "-"])
    assert result.exit_code == 0, result.output
    assert csv_rows(result.stdout)
    lines = result.stderr.splitlines()
    warning = f"stunscan: warning: cannot read {folder}/b\\x1b[31m.pcap: Input/output error"
    assert warning in lines
    assert "\x1b" not in result.stderr


@needs_corpus
def test_damaged_files_leave_the_others_reported(tmp_path: Path) -> None:
    damaged = CORPUS / "damaged"
    names = ["ng-truncated.pcapng", "random-after-magic.pcapng", "ng-epb-len-huge.pcapng",
             "truncated-mid-record.pcap", "caplen-ffffffff.pcap", "header-10.pcap"]  # fmt: skip
    alone = runner.invoke(app, ["pcap", str(PROJECT / "pcaps"), "--csv", "-"])
    inputs = [str(damaged / name) for name in names] + [str(PROJECT / "pcaps")]
    result = runner.invoke(app, ["pcap", *inputs, "--csv", "-"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("stunscan: warn")]
    assert len(warnings) == len(names)
    servers = {tuple(row[2:5]) for row in csv_rows(result.stdout)}
    assert {tuple(row[2:5]) for row in csv_rows(alone.stdout)} <= servers


@needs_corpus
def test_the_whole_damaged_folder_beside_good_captures(tmp_path: Path) -> None:
    """Every damaged file of the corpus in one run: a warning each where damaged, never a
    traceback, and the good captures after them still reported in full."""
    alone = runner.invoke(app, ["pcap", str(PROJECT / "pcaps"), "--csv", "-"])
    result = runner.invoke(
        app, ["pcap", str(CORPUS / "damaged"), str(PROJECT / "pcaps"), "--csv", "-"]
    )
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("stunscan: warn")]
    assert len(warned) >= 20
    servers = {tuple(row[2:5]) for row in csv_rows(result.stdout)}
    assert {tuple(row[2:5]) for row in csv_rows(alone.stdout)} <= servers


def test_a_timestamp_past_what_gmtime_takes_still_makes_a_row() -> None:
    from stunscan.record import _utc_text

    assert _utc_text(0) == "1970-01-01 00:00:00"
    assert _utc_text(1 << 62) == "9999-12-31 23:59:59"


def test_an_empty_folder_is_a_warning_and_exit_1(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no captures here\n")
    result = runner.invoke(app, ["pcap", str(empty)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"stunscan: warning: no pcap or pcapng capture in {empty}",
        "stunscan: no capture to analyse",
    ]
    assert result.stdout == ""
    # beside a capture, the empty folder is only a warning
    result = runner.invoke(app, ["pcap", str(empty), str(GOOD), "--csv", "-"])
    assert result.exit_code == 0
    assert f"stunscan: warning: no pcap or pcapng capture in {empty}" in result.stderr


def test_progress_only_on_a_terminal_and_for_long_runs() -> None:
    from rich.console import Console

    from stunscan.pcap.progress import SHOW_FROM_BYTES, RunProgress

    def shown(terminal: bool, total: int) -> str:
        out = io.StringIO()
        console = Console(file=out, force_terminal=terminal, width=100)
        with RunProgress(console, 2, total) as progress:
            progress.advance(total // 2)
            progress.file_done()
        return out.getvalue()

    on_terminal = shown(True, 1 << 30)
    assert "files 1/2" in on_terminal and "0.5/1.0 GiB" in on_terminal
    assert on_terminal.endswith("\x1b[2K")  # transient: erased before the table prints
    assert shown(False, 1 << 30) == ""
    assert shown(True, SHOW_FROM_BYTES - 1) == ""
