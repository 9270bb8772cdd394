"""`stunscan pcap` against tshark and Scapy on the same large captures, side by side.

Run: ``python benchmarks/pcap_throughput.py`` (needs tshark and GNU time; about fifteen
minutes).

It writes two captures of 1,000,000 packets: mixed STUN traffic (benchmarks/mixed_capture.py,
also at 100,000 packets for the memory figure) and one shaped like a scan's own pcap
(benchmarks/scan_capture.py: a probe, a coturn-like and a stund-like answer in turn, every
packet with its own ID). It checks what stunscan finds in the scan capture against what
the generator wrote (servers, rows, requests, responses, pairs), then times each tool on
each capture several times (medians quoted):
- ``stunscan pcap F --csv /dev/null`` (Scapy-free) with the default workers, and with one,
- ``tshark -r F -Y stun -T fields`` with the same fields,
- Scapy's PcapReader with scapy.contrib.stun extracting the same fields, on the first
  --scapy-packets packets only (at its speed the whole file would take hours),
and reports packets per second, the ratios, and each tool's peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixed_capture import generate
from scan_capture import generate as generate_scan

TSHARK_FIELDS = [
    "frame.time_epoch", "ip.src", "ipv6.src", "udp.srcport", "tcp.srcport", "stun.type",
    "stun.id", "stun.length", "stun.att.ipv4", "stun.att.ipv6", "stun.att.port",
    "stun.att.ipv4-xord", "stun.att.ipv6-xord", "stun.att.port-xord", "stun.att.software",
    "stun.att.crc32",
]  # fmt: skip

SCAPY_SCRIPT = """
import sys
from scapy.utils import PcapReader
from scapy.layers.inet import UDP, TCP
import scapy.contrib.stun as stun
rows = 0
with PcapReader(sys.argv[1]) as reader:
    for number, packet in enumerate(reader):
        if number >= int(sys.argv[2]):
            break
        if packet.haslayer(stun.STUN):
            s = packet[stun.STUN]
            fields = [packet.time, s.stun_message_type, s.transaction_id, s.length]
            for attr in s.attributes:
                fields.append(attr.fields)
            rows += 1
print(rows)
"""


def measure(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of one run of ``command``. The RSS is GNU time's:
    this process's own wait4 figure would start from its own size (the child is forked)."""
    start = time.perf_counter()
    process = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return elapsed, int(process.stderr.split()[-1]) // 1024


def median_run(command: list[str], runs: int) -> tuple[float, int]:
    results = [measure(command) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


CHECK_SCRIPT = """
import dataclasses, json, sys
from stunscan.pcap.analyzer import Analyzer
from stunscan.pcap.feed import PcapFeed
analyzer = Analyzer()
first = sum(s.first for batch in PcapFeed(sys.argv[1], analyzer) for s in batch)
analyzer.finish()
found = dataclasses.asdict(analyzer.stats)
found.update(servers=len(analyzer.tally.servers), first=first)
print(json.dumps(found))
"""


def check_scan(path: Path, expected: object, folder: str, runs: list[str]) -> None:
    """stunscan's findings on a scan capture against what the generator wrote (in other
    processes: the benchmark's own memory would count in the figures of what it starts)."""
    stats = json.loads(
        subprocess.run(
            [sys.executable, "-c", CHECK_SCRIPT, str(path)], check=True, capture_output=True
        ).stdout
    )
    rows_file = Path(folder, "rows.csv")
    subprocess.run([*runs, str(path), "--csv", str(rows_file)], check=True, capture_output=True)
    with rows_file.open() as handle:
        rows = sum(1 for _ in csv.DictReader(handle))
    found = {
        "packets": stats["frames"],
        "requests": stats["requests"],
        "responses": stats["responses"],
        "paired": stats["paired"],
        "unsolicited": stats["unsolicited"],
        "servers": stats["servers"],
    }
    wanted = dataclasses.asdict(expected)  # type: ignore[call-overload]
    wanted.pop("moved")
    if found != wanted or rows != stats["first"] or rows != wanted["servers"]:
        raise SystemExit(f"stunscan is wrong on {path.name}: {found}, {rows} rows; want {wanted}")
    print(
        f"{path.name}: {found['servers']:,} servers and CSV rows, {found['requests']:,} requests,"
        f" {found['responses']:,} responses ({found['paired']:,} paired,"
        f" {found['unsolicited']:,} unsolicited, {stats['unanswered']:,} unanswered): as written"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scapy-packets", type=int, default=20_000)
    args = parser.parse_args()
    stunscan = [sys.executable, "-m", "stunscan", "pcap", "--table-rows", "0"]
    tools = ["stunscan pcap", "stunscan --workers 1", "tshark -T fields", "Scapy + contrib.stun"]
    rates: dict[str, dict[str, float]] = {}
    memory: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        small = Path(folder, "small.pcap")
        generate(small, args.small)
        captures = {"mixed": Path(folder, "mixed.pcap"), "scan": Path(folder, "scan.pcap")}
        generate(captures["mixed"], args.packets)
        check_scan(small_scan := Path(folder, "answered.pcap"),
                   generate_scan(small_scan, 30_000, "answered"), folder, stunscan)  # fmt: skip
        check_scan(
            captures["scan"], generate_scan(captures["scan"], args.packets), folder, stunscan
        )
        for name, path in captures.items():
            tshark = ["tshark", "-r", str(path), "-Y", "stun", "-T", "fields"]
            for field in TSHARK_FIELDS:
                tshark += ["-e", field]
            ours = [*stunscan, "--csv", "/dev/null", str(path)]
            commands = {
                "stunscan pcap": ours,
                "stunscan --workers 1": [*ours, "--workers", "1"],
                "tshark -T fields": tshark,
                "Scapy + contrib.stun": [
                    sys.executable, "-c", SCAPY_SCRIPT, str(path), str(args.scapy_packets)
                ],
            }  # fmt: skip
            rates[name], memory[name] = {}, {}
            for tool in tools:
                seconds, rss = median_run(commands[tool], args.runs)
                counted = args.scapy_packets if tool.startswith("Scapy") else args.packets
                rates[name][tool], memory[name][tool] = counted / seconds, rss
        _, small_rss = median_run([*stunscan, "--csv", "/dev/null", str(small)], args.runs)
    print(f"\n{args.packets:,} packets per capture; median of {args.runs} runs; packets/s")
    print(f"(mixed: mixed STUN traffic; scan: a scan's own pcap, {os.cpu_count()} cores)\n")
    header = f"{'tool':24}"
    for name in captures:
        header += f"{name + ' pkt/s':>14}{'MiB':>6}{'stunscan is':>13}"
    print(header)
    for tool in tools:
        line = f"{tool:24}"
        for name in captures:
            ratio = rates[name]["stunscan pcap"] / rates[name][tool]
            shown = "" if tool == "stunscan pcap" else f"{ratio:.1f}x"
            line += f"{rates[name][tool]:>14,.0f}{memory[name][tool]:>6}{shown:>13}"
        print(line)
    ours_rss = memory["mixed"]["stunscan pcap"]
    print(
        f"\nstunscan peak memory on mixed traffic: {small_rss} MiB at {args.small:,} packets,"
        f" {ours_rss} MiB at {args.packets:,} ({ours_rss / small_rss - 1:+.0%})"
    )
    print(f"(Scapy timed on the first {args.scapy_packets:,} packets only)")


if __name__ == "__main__":
    main()
