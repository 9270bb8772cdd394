"""``stunscan verify`` against real servers on loopback (coturn, stund), a silent UDP port,
closed ports and a changed SOFTWARE; and the same report CSV fed to ``probe -I`` and
``scan -I`` (its rows' own ports). Only loopback addresses."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_servers import LabServer, coturn, stund

from stunscan.record import COLUMNS

FAST = ["--timeout", "1", "--rto", "0.25"]


def stunscan(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="80")
    return subprocess.run(
        [sys.executable, "-m", "stunscan", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LabServer, LabServer]]:
    with coturn(ipv6=False) as turn, stund() as classic:
        yield turn, classic


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def real_rows(*servers: LabServer) -> list[dict[str, str]]:
    """Each server's row as the report's own probe draws it now (`probe --csv`)."""
    done = stunscan("probe", "--csv", "-", "-V", "shadowserver", *FAST,
                    *(f"{s.host}:{s.port}" for s in servers))  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == len(servers)
    return rows


def write_report(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture()
def silent_port() -> Iterator[int]:
    """A UDP port bound and never read: datagrams vanish, no ICMP comes back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_every_status_and_the_exit_code(
    servers: tuple[LabServer, LabServer], silent_port: int, tmp_path: Path
) -> None:
    turn, classic = servers
    turn_row, classic_row = real_rows(turn, classic)
    closed_udp, closed_tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    rows = [
        turn_row,
        turn_row | {"protocol": "tcp"},
        classic_row | {"software": turn_row["software"]},  # SOFTWARE changed
        classic_row | {"ip": classic.alternate_host, "amplification": "9.99"},  # amplification
        turn_row | {"port": str(silent_port)},
        turn_row | {"port": str(closed_udp)},
        turn_row | {"protocol": "tcp", "port": str(closed_tcp)},
        turn_row | {"ip": "127.0.0.77"},  # an address nobody listens on
    ]
    report = write_report(tmp_path / "report.csv", rows)
    out_csv, out_json = tmp_path / "verify.csv", tmp_path / "verify.json"
    done = stunscan("verify", *FAST, "--csv", str(out_csv), "--json", str(out_json), str(report))
    assert done.returncode == 1, done.stderr  # some are still open
    result = json.loads(out_json.read_text())
    hosts = {(h["ip"], h["port"], h["protocol"]): h for h in result["hosts"]}

    def host(row: dict[str, str]) -> dict[str, Any]:
        return hosts[(row["ip"], int(row["port"]), row["protocol"])]

    assert host(rows[0])["status"] == "open"
    assert host(rows[0])["amplification_now"] == float(turn_row["amplification"])
    assert host(rows[1])["status"] == "open"
    assert [a["transport"] for a in host(rows[1])["asked"]] == ["tcp", "tcp"]
    assert host(rows[2])["status"] == "changed" and "SOFTWARE" in host(rows[2])["detail"]
    assert host(rows[3])["status"] == "changed"
    assert "amplification 9.99 ->" in host(rows[3])["detail"]
    assert host(rows[4]) | {} and host(rows[4])["status"] == "closed"
    assert host(rows[4])["detail"] == "no answer"
    assert (
        host(rows[5])["status"] == "closed" and host(rows[5])["detail"] == "ICMP port unreachable"
    )
    assert host(rows[6])["status"] == "closed" and "refused" in host(rows[6])["detail"]
    assert host(rows[7])["status"] == "closed" and "ICMP" in host(rows[7])["detail"]
    assert result["summary"] | {"bad_rows": {}} == {
        "listed": 8,
        "still_open": 4,
        "changed": 2,
        "closed": 4,
        "not_checked": 0,
        "bad_rows": {},
    }
    assert "8 listed: 4 still open (2 of them changed), 4 closed" in done.stdout
    with out_csv.open(newline="") as stream:
        written = list(csv.DictReader(stream))
    assert list(written[0]) == [*COLUMNS, "status", "amplification_then", "checked_at"]
    by_host = {(r["ip"], r["port"], r["protocol"]): r for r in written}
    open_row = by_host[(turn_row["ip"], turn_row["port"], "udp")]
    assert open_row["status"] == "open" and open_row["software"] == turn_row["software"]
    assert open_row["transaction_id"] == "0" * 24  # the answer to the report's own probe
    changed = by_host[(classic.alternate_host, classic_row["port"], "udp")]
    assert changed["amplification_then"] == "9.99"
    assert changed["amplification"] == classic_row["amplification"]
    closed = by_host[(turn_row["ip"], str(closed_udp), "udp")]
    assert closed["status"] == "closed" and closed["amplification"] == ""
    assert closed["amplification_then"] == turn_row["amplification"]


def test_none_open_exits_zero_and_hostile_cells_are_defused(tmp_path: Path) -> None:
    closed = free_port(socket.SOCK_DGRAM)
    row = dict.fromkeys(COLUMNS, "") | {
        "timestamp": "2022-05-01 00:00:00",
        "ip": "127.0.0.1",
        "port": str(closed),
        "protocol": "udp",
        "software": "=cmd|' /C calc'!A0",
        "amplification": "4.40",
    }
    weird = row | {"protocol": "sctp", "software": "\x1b[31m<b>x</b>"}
    report = write_report(tmp_path / "closed.csv", [row, weird])
    out_csv = tmp_path / "out.csv"
    done = stunscan("verify", *FAST, "--csv", str(out_csv), str(report))
    assert done.returncode == 0, done.stderr
    assert "2 listed: 0 still open (0 of them changed), 1 closed, 1 not checked" in done.stdout
    assert "\x1b" not in done.stdout
    assert "=cmd" not in out_csv.read_text().replace(",'=cmd", "")


def test_rate_caps_packets(tmp_path: Path) -> None:
    """Three silent hosts (UDP ports bound here and read only at the end): every datagram
    sent is counted where it arrives. Uncapped, the schedule (two requests of 1 s each,
    retransmitted at 0, 0.25 and 0.75 s) sends 18 in about 2 s; at 5 a second the last can
    leave no sooner than (count - 1) / 5 seconds after the first."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        rows = [
            dict.fromkeys(COLUMNS, "")
            | {"ip": "127.0.0.1", "port": str(s.getsockname()[1]), "protocol": "udp"}
            for s in sockets
        ]
        report = write_report(tmp_path / "three.csv", rows)
        started = time.monotonic()
        done = stunscan("verify", *FAST, "--rate", "5", "--json", "-", str(report))
        elapsed = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        arrived = 0
        for sock in sockets:
            sock.setblocking(False)
            while True:
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    break
                arrived += 1
    finally:
        for sock in sockets:
            sock.close()
    result = json.loads(done.stdout)
    assert arrived == sum(a["sent"] for h in result["hosts"] for a in h["asked"])
    assert arrived >= 6, done.stdout  # each host asked both requests at least once
    assert elapsed >= (arrived - 1) / 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Missing argument"),
        (["--rate", "-1", "x.csv"], "--rate must be a number from 1 to 100,000,000"),
        (["/nonexistent.csv"], "no such file or folder"),
    ],
)
def test_verify_usage_errors_exit_two(args: list[str], message: str) -> None:
    done = stunscan("verify", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_scan_and_probe_take_the_report_csv(
    servers: tuple[LabServer, LabServer], tmp_path: Path
) -> None:
    turn, classic = servers
    turn_row, classic_row = real_rows(turn, classic)
    rows = [
        turn_row,
        classic_row,
        turn_row | {"protocol": "tcp", "port": "5349"},  # scan sends UDP only
        turn_row | {"ip": "::1", "port": "3479"},
    ]
    report = write_report(tmp_path / "report.csv", rows)
    done = stunscan("scan", "--dry-run", "-I", str(report), "--allow", "127.0.0.0/8",
                    "--allow", "::1/128", "--seed", "5")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted(
        [f"127.0.0.1:{turn.port}", f"127.0.0.1:{classic.port}", "[::1]:3479"]
    )
    plain = tmp_path / "plain.txt"
    plain.write_text(f"# lab\n127.0.0.1:{turn.port} [::1]:5000\n127.0.0.4/31  # two more\n")
    done = stunscan("scan", "--dry-run", "-I", str(plain), "-p", "7", "--allow", "127.0.0.0/8",
                    "--allow", "::1/128", "--seed", "5")  # fmt: skip
    assert sorted(done.stdout.split()) == sorted(
        [f"127.0.0.1:{turn.port}", "[::1]:5000", "127.0.0.4:7", "127.0.0.5:7"]
    )
    done = stunscan("probe", *FAST, "--json", "-", "-I", str(report))
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["ip"], a["port"], a["answered"]) for a in answers] == [
        ("127.0.0.1", turn.port, True),
        ("127.0.0.1", classic.port, True),
        ("127.0.0.1", 5349, False),
        ("::1", 3479, False),
    ]


@pytest.mark.parametrize("command", ["scan", "probe"])
def test_bad_target_files_are_one_line(command: str, tmp_path: Path) -> None:
    bad_port = tmp_path / "bad.csv"
    bad_port.write_text("timestamp,ip,port\n2022-05-01 00:00:00,127.0.0.1,99999\n")
    extra = ["--dry-run", "--allow", "127.0.0.0/8"] if command == "scan" else []
    done = stunscan(command, *extra, "-I", str(bad_port))
    assert done.returncode == 2
    assert "bad.csv:2" in done.stderr and "1 to 65535" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    done = stunscan(command, *extra, "-I", str(tmp_path / "missing.txt"))
    assert done.returncode == 2 and "cannot read" in done.stderr
