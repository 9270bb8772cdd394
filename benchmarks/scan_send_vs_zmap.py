"""Send rate: ``stunscan scan`` against zmap on 198.18.0.0/15, side by side, same interface.

Run (as root; needs zmap and iproute2): ``python benchmarks/scan_send_vs_zmap.py``.

Both tools scan the 131,072 addresses of the benchmarking range (RFC 2544) on UDP 3478 with
the same 20-byte Binding request, as fast as they can, from a namespace whose only route
leads to a second namespace that drops everything (no forwarding, no listener): nothing
can leave the machine. The rate is measured the same way for both, outside the tools, on
the interface's transmit counter (benchmarks/interface_rate.py).
Each tool runs with one sending thread or process (the defaults) and with two (zmap -T 2,
stunscan --senders 2). Medians of --runs runs are quoted. The runs are interleaved (each
round runs every command once), so the ratio within a round compares the tools under the
same load on this shared machine; the median of those paired ratios is printed beside the
ratio of the medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from interface_rate import rate_while, read_counter  # noqa: E402
from scan_lab import LAB_V4, SCANNER_V4, scan_lab  # noqa: E402

RANGE = "198.18.0.0/15"
PROBE_HEX = "000100002112a442" + "00" * 12

TARGETS = 131072


def measure(lab, command: list[str]) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """(frames scan0 transmitted, packets/s) for one run of ``command``."""
    before = int(read_counter(lab.scanner, "scan0", "statistics/tx_packets"))
    rate = rate_while(lab, "tx_packets", TARGETS, command)
    return int(read_counter(lab.scanner, "scan0", "statistics/tx_packets")) - before, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with scan_lab(servers=False, routed=(RANGE,)) as lab, tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp, "empty.conf")
        empty.write_text("")
        gateway = read_counter(lab.lab, "lab0", "address")
        stunscan = [
            sys.executable, "-m", "stunscan", "scan", RANGE, "--allow", RANGE, "--rate", "0",
            "--cooldown", "0", "--probe", "binding", "--table-rows", "0", "--csv", "/dev/null",
            "--interface", "scan0", "--gateway-mac", gateway,
        ]  # fmt: skip
        zmap = [
            "zmap", "-M", "udp", "-p", "3478", f"--probe-args=hex:{PROBE_HEX}", "-i", "scan0",
            "-S", SCANNER_V4, "-G", gateway, "-r", "10000000", "-c", "0", "-b", str(empty),
            "-o", "/dev/null", "-q", RANGE,
        ]  # fmt: skip
        commands = {
            "stunscan": stunscan,
            "stunscan --senders 2": [*stunscan, "--senders", "2"],
            "zmap": zmap,
            "zmap -T 2": [*zmap, "-T", "2"],
        }
        results: dict[str, list[tuple[int, float]]] = {tool: [] for tool in commands}
        for _ in range(args.runs):
            for tool, command in commands.items():
                results[tool].append(measure(lab, command))
    for tool, runs in results.items():
        print(tool, "runs (packets/s):", ", ".join(f"{rate:,.0f}" for _, rate in runs))
    rates = {tool: statistics.median(rate for _, rate in runs) for tool, runs in results.items()}
    print(f"{RANGE}: 131,072 targets, UDP 3478, 20-byte Binding; median of {args.runs} runs")
    print(f"(gateway {LAB_V4}: a namespace that drops everything)\n")
    print(f"{'tool':22}{'frames':>10}{'packets/s':>12}{'vs zmap':>9}{'vs zmap -T 2':>14}"
          f"{'paired vs zmap':>16}{'paired vs -T 2':>16}")  # fmt: skip
    for tool in commands:
        frames = statistics.median(f for f, _ in results[tool])
        ratio, ratio2 = rates[tool] / rates["zmap"], rates[tool] / rates["zmap -T 2"]
        paired = [paired_ratio(results, tool, other) for other in ("zmap", "zmap -T 2")]
        print(f"{tool:22}{frames:>10,.0f}{rates[tool]:>12,.0f}{ratio:>8.2f}x{ratio2:>13.2f}x"
              f"{paired[0]:>15.2f}x{paired[1]:>15.2f}x")  # fmt: skip


def paired_ratio(results: dict[str, list[tuple[int, float]]], tool: str, other: str) -> float:
    """The median, over rounds, of ``tool``'s rate over ``other``'s in the same round."""
    rounds = zip(results[tool], results[other], strict=True)
    return statistics.median(mine / theirs if theirs else 0.0 for (_, mine), (_, theirs) in rounds)


if __name__ == "__main__":
    main()
