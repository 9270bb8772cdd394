"""`stunscan pcap` against tshark and Scapy on the same large capture, side by side.

Run: ``python benchmarks/pcap_throughput.py`` (needs tshark; about five minutes).

It writes a capture of mixed STUN traffic (benchmarks/mixed_capture.py) at 100,000 and
1,000,000 packets, then times, in one run and several times each (medians quoted):
- ``stunscan pcap F --csv /dev/null`` (Scapy-free),
- ``tshark -r F -Y stun -T fields`` with the same fields,
- Scapy's PcapReader with scapy.contrib.stun extracting the same fields, on the first
  --scapy-packets packets only (at its speed the whole file would take hours),
and reports packets per second, the ratios, and each tool's peak memory (max RSS).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixed_capture import generate

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
    """Wall seconds and peak RSS (MiB) of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss // 1024


def median_run(command: list[str], runs: int) -> tuple[float, int]:
    results = [measure(command) for _ in range(runs)]
    return statistics.median(r[0] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scapy-packets", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        big, small = Path(folder, "big.pcap"), Path(folder, "small.pcap")
        generate(big, args.packets)
        generate(small, args.small)
        stunscan = [
            sys.executable,
            "-m",
            "stunscan",
            "pcap",
            "--csv",
            "/dev/null",
            "--table-rows",
            "0",
        ]
        tshark = ["tshark", "-r", str(big), "-Y", "stun", "-T", "fields"]
        for name in TSHARK_FIELDS:
            tshark += ["-e", name]
        ours, ours_rss = median_run([*stunscan, str(big)], args.runs)
        _, small_rss = median_run([*stunscan, str(small)], args.runs)
        theirs, tshark_rss = median_run(tshark, args.runs)
        scapy_time, scapy_rss = median_run(
            [sys.executable, "-c", SCAPY_SCRIPT, str(big), str(args.scapy_packets)], args.runs
        )
    rates = {
        "stunscan pcap": args.packets / ours,
        "tshark -T fields": args.packets / theirs,
        "Scapy + contrib.stun": args.scapy_packets / scapy_time,
    }
    print(f"{args.packets:,} packets of mixed STUN traffic; median of {args.runs} runs\n")
    print(f"{'tool':24}{'packets/s':>12}{'peak MiB':>10}{'stunscan is':>14}")
    print(f"{'stunscan pcap':24}{rates['stunscan pcap']:>12,.0f}{ours_rss:>10}{'':>14}")
    for tool, rss in (("tshark -T fields", tshark_rss), ("Scapy + contrib.stun", scapy_rss)):
        ratio = rates["stunscan pcap"] / rates[tool]
        print(f"{tool:24}{rates[tool]:>12,.0f}{rss:>10}{ratio:>13.1f}x")
    print(
        f"\nstunscan peak memory: {small_rss} MiB at {args.small:,} packets,"
        f" {ours_rss} MiB at {args.packets:,} ({ours_rss / small_rss - 1:+.0%})"
    )
    print(f"(Scapy timed on the first {args.scapy_packets:,} packets only)")


if __name__ == "__main__":
    main()
