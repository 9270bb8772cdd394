"""``stunscan scan`` against real servers in a lab of network namespaces (tests/scan_lab.py).

coturn and stund answer on 203.0.113.x and 2001:db8:1::10; a responder forges transaction
IDs, one answers from another port, one answers probes for another address (a spoofer);
most addresses are silent. The scanner runs in its own namespace whose only routes lead to
the lab, so nothing can leave. Checked: the exact set found (IPv4 and IPv6), forged and
spoofed answers rejected, shards, what is sent (captured) and how fast, Ctrl-C, privileges.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scan_lab import (
    COTURN_V4,
    EXPECTED_V4,
    EXPECTED_V6,
    MOVED,
    SCANNER_V4,
    SCANNER_V6,
    SPOOFER,
    STUND_ALTERNATE,
    STUND_PRIMARY,
    Lab,
    available,
    scan_lab,
)

from stunscan.capture.files import CaptureReader
from stunscan.jsonshape import validator

pytestmark = pytest.mark.skipif(not available(), reason="needs root, iproute2, coturn, stund")

LAB_TARGETS = ["203.0.113.0/26", "2001:db8:1::/120"]
ALLOW = ["--allow", "203.0.113.0/24", "--allow", "2001:db8::/32"]
SOURCE_PORT = 40000


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with scan_lab() as running:
        yield running


def scan(lab: Lab, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "stunscan", "scan", *args, "--source-port", str(SOURCE_PORT)]
    return subprocess.run(lab.in_scanner(*command), capture_output=True, text=True, timeout=timeout)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def counted(output: str, label: str) -> int:
    match = re.search(rf"{label} (\d+)", output)
    assert match, f"{label!r} not in:\n{output}"
    return int(match.group(1))


def test_finds_exactly_the_lab_servers(lab: Lab, tmp_path: Path) -> None:
    out_csv, out_json, out_pcap = tmp_path / "s.csv", tmp_path / "s.jsonl", tmp_path / "s.pcap"
    result = scan(
        lab, *LAB_TARGETS, *ALLOW, "--rate", "2000", "--cooldown", "1", "--seed", "1",
        "--csv", str(out_csv), "--json", str(out_json), "--pcap-out", str(out_pcap),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = rows(out_csv)
    assert {row["ip"] for row in found} == EXPECTED_V4 | EXPECTED_V6
    assert len(found) == len(EXPECTED_V4 | EXPECTED_V6)  # duplicates dropped
    for row in found:
        own = SCANNER_V6 if ":" in row["ip"] else SCANNER_V4
        assert (row["xor_mapped_address"], row["xor_mapped_port"]) == (own, str(SOURCE_PORT))
        assert row["port"] == "3478" and row["magic_cookie"] == "2112a442"
        assert row["message_type"] == "0101"
        size = int(row["response_size"])
        assert row["amplification"] == f"{size / 20:.2f}"
    coturn = next(row for row in found if row["ip"] == COTURN_V4)
    assert coturn["software"].startswith("Coturn")
    details = {d["ip"]: d for d in json_lines(out_json)}
    assert details[MOVED]["answered_from_port"] == 3479
    assert all(d["validation"] == "transaction-id" for d in details.values())
    assert "answered_from_port" not in details[COTURN_V4]
    summary = result.stdout
    assert counted(summary, "valid") == len(found)
    assert counted(summary, "from another port") == 1
    assert counted(summary, "bad transaction ID") == 3  # forged v4, forged v6, the spoofer
    assert counted(summary, "port") >= 1  # 203.0.113.40 holds no server: ICMP port unreachable
    assert "IPv4 4, IPv6 1" in summary
    assert counted(summary, r"kernel drops\s+") == 0
    reader = CaptureReader(out_pcap)
    frames = list(reader)
    assert reader.problem is None
    assert len(frames) == counted(summary, r"received\s+")
    stamps = [frame.time for frame in frames]  # the kernel's receive times, in order
    assert stamps == sorted(stamps) and abs(stamps[0] - time.time()) < 60
    check = validator("scan")  # one JSON shape: stunscan/schemas/scan.json
    for line in details.values():
        check.validate(line)
        assert line["client"] == {"ip": SCANNER_V6 if ":" in line["ip"] else SCANNER_V4,
                                  "port": SOURCE_PORT}  # fmt: skip
    flat = re.sub(r"[│\s]+", " ", summary)
    assert (
        f"seen as {SCANNER_V4}:{SOURCE_PORT}" in flat or f"[{SCANNER_V6}]:{SOURCE_PORT}, " in flat
    )
    assert "0 of the servers in the table saw another" in flat
    assert "as sent" in summary and "XOR-MAPPED  " not in summary  # one flag column, not two


def test_the_report_probe_is_validated_by_address_only(lab: Lab, tmp_path: Path) -> None:
    """With the all-zero ID nothing tells the spoofer's answer from a server's: it is
    accepted as 203.0.113.33. The keyed ID (previous test) rejects it."""
    out_json = tmp_path / "s.jsonl"
    result = scan(
        lab, "203.0.113.0/26", *ALLOW, "--probe", "shadowserver", "--rate", "2000",
        "--cooldown", "1", "--json", str(out_json),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    details = json_lines(out_json)
    assert {d["ip"] for d in details} == EXPECTED_V4 | {SPOOFER}
    assert {d["transaction_id"] for d in details} == {"0" * 24}
    assert all(d["validation"] == "address-only" for d in details)
    assert "address and port only" in result.stdout


def test_shards_together_are_the_whole_scan(lab: Lab, tmp_path: Path) -> None:
    """Three shards, each sent by two processes (--senders cuts a shard again)."""
    found: list[set[str]] = []
    for shard in range(3):
        out = tmp_path / f"shard{shard}.csv"
        result = scan(
            lab, *LAB_TARGETS, *ALLOW, "--shards", "3", "--shard", str(shard), "--seed", "9",
            "--rate", "3000", "--cooldown", "0.5", "--csv", str(out), "--senders", "2",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        found.append({row["ip"] for row in rows(out)})
    assert set().union(*found) == EXPECTED_V4 | EXPECTED_V6
    assert sum(len(part) for part in found) == len(EXPECTED_V4 | EXPECTED_V6)


def test_nothing_is_sent_outside_the_allowed_space_and_the_rate_holds(
    lab: Lab, tmp_path: Path
) -> None:
    """Everything the scanner's interface transmits is captured: every target exactly
    ``--probes`` times, nothing blocklisted or excluded, at the asked rate."""
    exclusions = tmp_path / "exclude.txt"
    exclusions.write_text("203.0.113.128/25\n203.0.113.7\n")
    capture = tmp_path / "sent.pcap"
    tcpdump = subprocess.Popen(
        lab.in_scanner("tcpdump", "-i", "scan0", "-Q", "out", "-U", "-w", str(capture), "udp"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert tcpdump.stderr is not None
    assert "listening on scan0" in tcpdump.stderr.readline()
    time.sleep(0.5)  # libpcap drains its socket once more as it sets the filter
    try:
        result = scan(
            lab, "203.0.113.0/24", "198.51.100.0/24", "--allow", "203.0.113.0/24",
            "--exclude", str(exclusions), "--probes", "4", "--rate", "1000", "--cooldown", "0.2",
        )  # fmt: skip
        time.sleep(0.5)
    finally:
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    sent = Counter()
    times = []
    for frame in CaptureReader(capture):
        data = frame.data
        if data[12:14] == b"\x08\x00" and data[23] == 17 and data[36:38] == b"\x0d\x96":
            sent[str(ipaddress.ip_address(data[30:34]))] += 1
            times.append(frame.time)
    allowed = {str(a) for a in ipaddress.ip_network("203.0.113.0/25")} - {"203.0.113.7"}
    assert set(sent) == allowed
    assert set(sent.values()) == {4}
    # over the 1st to the 99th percent of the probes, as the benchmarks count: one stall
    # of the machine before the very first probe must not decide the figure
    low, high = len(times) // 100, len(times) - 1 - len(times) // 100
    rate = (high - low) / (times[high] - times[low])
    assert abs(rate - 1000) / 1000 < 0.05, rate


def test_ctrl_c_stops_sending_and_keeps_every_answer(lab: Lab, tmp_path: Path) -> None:
    out_csv, out_pcap = tmp_path / "s.csv", tmp_path / "s.pcap"
    command = [
        sys.executable, "-m", "stunscan", "scan", "203.0.113.0/26", *ALLOW, "--rate", "40",
        "--cooldown", "1", "--seed", "4", "--csv", str(out_csv), "--pcap-out", str(out_pcap),
    ]  # fmt: skip
    process = subprocess.Popen(
        lab.in_scanner(*command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    header = process.stderr.readline()  # printed just before the first probe, however
    assert header.startswith("stunscan: scanning"), header  # long starting took
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    stderr = header + stderr
    assert process.returncode == 130, stderr  # as a shell expects of a command SIGINT stopped
    assert "interrupted" in stderr and "Traceback" not in stderr
    sent = counted(stdout, r"sent\s+")
    assert 0 < sent < 64
    answered = set()
    for frame in CaptureReader(out_pcap):
        data = frame.data
        if data[12:14] == b"\x08\x00" and data[23] == 17 and data[42:44] == b"\x01\x01":
            answered.add(str(ipaddress.ip_address(data[26:30])))
    kept = {row["ip"] for row in rows(out_csv)}
    assert kept == answered & (EXPECTED_V4 | {MOVED})
    assert kept, "the seed was chosen so that a server is probed in the first second"


def test_without_cap_net_raw_one_clear_line(lab: Lab) -> None:
    command = [
        "setpriv", "--inh-caps=-net_raw,-net_admin", "--bounding-set=-net_raw,-net_admin",
        sys.executable, "-m", "stunscan", "scan", "203.0.113.10", *ALLOW,
    ]  # fmt: skip
    result = subprocess.run(lab.in_scanner(*command), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "needs CAP_NET_RAW" in result.stderr
    assert result.stderr.count("\n") == 1


BPF_CHECK = """
import socket, time
from stunscan.scan.sniffer import open_capture
capture = open_capture("lo", (40000, 40001))
def send(family, host, port, source_port):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, source_port))
        s.sendto(b"x" * 20, (host, port))
send(socket.AF_INET, "127.0.0.1", 40000, 41000)     # to our port: kept once (not the outgoing copy)
send(socket.AF_INET, "127.0.0.1", 39999, 41001)     # below the range: dropped, ICMP kept
send(socket.AF_INET6, "::1", 40001, 41002)          # IPv6 to our port: kept
send(socket.AF_INET6, "::1", 40002, 41003)          # above the range: dropped, ICMPv6 kept
time.sleep(0.3)
seen = []
while capture.ring.wait(0.5):
    frames = capture.ring.take()
    for index in range(len(frames)):
        frame = capture.ring.frame(frames, index)
        v4 = frame[12:14] == b"\\x08\\x00"
        seen.append(frame[12:14].hex() + ":" + (frame[23:24] if v4 else frame[20:21]).hex())
    capture.ring.release(frames)
print(sorted(seen))
"""


def test_the_kernel_filter_passes_only_answers_to_our_ports_and_unreachables(lab: Lab) -> None:
    result = subprocess.run(
        lab.in_scanner(sys.executable, "-c", BPF_CHECK), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    # each family: the UDP to our port once (its outgoing copy filtered), the two port
    # unreachables (nothing listens on either port), never the UDP outside the range
    expected = ["0800:11", "0800:01", "0800:01", "86dd:11", "86dd:3a", "86dd:3a"]
    assert result.stdout.strip() == str(sorted(expected))


def test_classic_probe_finds_the_rfc3489_server(lab: Lab, tmp_path: Path) -> None:
    """A 16-byte keyed ID in a cookie-less request: stund (RFC 3489) echoes it whole."""
    out_json = tmp_path / "s.jsonl"
    result = scan(
        lab, "203.0.113.16/28", *ALLOW, "--probe", "classic", "--rate", "2000",
        "--cooldown", "1", "--json", str(out_json),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    details = {d["ip"]: d for d in json_lines(out_json)}
    assert {STUND_PRIMARY, STUND_ALTERNATE} <= set(details)
    stund = details[STUND_PRIMARY]
    assert len(stund["transaction_id"]) == 32 and stund["type_name"] == "Binding Success Response"
    assert stund["mapped_address"] == stund["xor_mapped_address"] == SCANNER_V4


def test_csv_to_the_terminal_never_shares_a_line_with_progress(lab: Lab) -> None:
    """``scan --csv -`` with standard output and error on one terminal (a pty): every CSV
    row is a line of its own; no progress line is drawn into them."""
    import os
    import pty
    import threading

    leader, follower = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    command = [
        sys.executable, "-m", "stunscan", "scan", *LAB_TARGETS, *ALLOW, "--rate", "2000",
        "--cooldown", "1", "--seed", "1", "--csv", "-", "--source-port", str(SOURCE_PORT),
    ]  # fmt: skip
    try:
        process = subprocess.run(
            lab.in_scanner(*command), stdin=subprocess.DEVNULL, stdout=follower,
            stderr=follower, timeout=120, env={**os.environ, "COLUMNS": "200"},
        )  # fmt: skip
    finally:
        os.close(follower)
    reader.join(timeout=10)
    os.close(leader)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    assert process.returncode == 0, text
    lines = text.split("\n")
    rows = [line for line in lines if line.count(",") == 27 and not line.startswith("timestamp,")]
    assert len(rows) == len(EXPECTED_V4 | EXPECTED_V6), text
    for line in rows:
        assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,medium,", line), line
    assert not any(" · valid " in line for line in lines)  # no live progress line at all
