"""Receive: does ``stunscan scan`` keep every valid answer when every target answers?

Run (as root): ``python benchmarks/scan_receive.py``.

A lab namespace holds the whole of 198.18.0.0/17 (an AnyIP local route) and a responder
(tests/lab_responders.py ``reflect``) that answers every probe with a real Binding success
response, from the address the probe was sent to. The scanner's namespace routes only to
the lab. For each asked rate, stunscan scans the 32,768 addresses; the answers the lab's
interface transmitted (its counter) are compared with the valid rows stunscan wrote. The
answer rate is measured at the scanner's interface (its receive counter, from the 1st to
the 99th percent of the answers: benchmarks/interface_rate.py). Reported: per rate, frames
the lab sent (its answers, plus a few ARP/ND frames, so "lost" is an upper bound), rows
kept, and the highest answer rate with nothing lost. Where the lab sent fewer than 32,768
answers, the Python responder itself fell behind.
Medians of --runs runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from interface_rate import rate_while, read_counter  # noqa: E402
from scan_lab import Lab, scan_lab  # noqa: E402

RANGE = "198.18.0.0/17"
TARGETS = 32768
ARP_AND_ND = 8
"""Frames the lab sends that are not answers (ARP, neighbour discovery): not losses."""
RESPONDER = str(HERE.parent / "tests" / "lab_responders.py")


def one_run(lab: Lab, rate: int, folder: Path) -> tuple[int, int, float]:
    """(frames the lab sent, valid rows kept, answer rate seen at the scanner)."""
    out = folder / f"rows-{rate}.csv"
    before = int(read_counter(lab.lab, "lab0", "statistics/tx_packets"))
    command = [
        sys.executable, "-m", "stunscan", "scan", RANGE, "--allow", RANGE, "--rate", str(rate),
        "--cooldown", "3", "--csv", str(out), "--table-rows", "0",
    ]  # fmt: skip
    seen = rate_while(lab, "rx_packets", TARGETS, command)
    answered = int(read_counter(lab.lab, "lab0", "statistics/tx_packets")) - before
    kept = sum(1 for _ in out.open()) - 1
    return answered, kept, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="25000,50000,75000,100000,0", help="0: no limit")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    rows = []
    with scan_lab(servers=False, routed=(RANGE,)) as lab, tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["ip", "-n", lab.lab, "route", "add", "local", RANGE, "dev", "lo"], check=True
        )
        lab.start("reflect", [sys.executable, RESPONDER, "reflect", "--limit", "10000000",
                              "--lifetime", "3600"])  # fmt: skip
        lab.wait_for("198.18.0.1")
        for rate in rates:
            runs = [one_run(lab, rate, Path(tmp)) for _ in range(args.runs)]
            time.sleep(0.5)
            answered = statistics.median(r[0] for r in runs)
            kept = statistics.median(r[1] for r in runs)
            lost = statistics.median(r[0] - r[1] for r in runs)
            seen = statistics.median(r[2] for r in runs)
            rows.append((rate, answered, kept, lost, seen))
    print(f"{RANGE}: {TARGETS:,} targets, every one answers; median of {args.runs} runs\n")
    header = ("asked pkt/s", 12), ("lab sent", 10), ("rows kept", 11), ("lost (at most)", 16)
    print("".join(f"{name:>{width}}" for name, width in header) + f"{'answers/s seen':>16}")
    for rate, answered, kept, lost, seen in rows:
        asked = f"{rate:,}" if rate else "max"
        print(f"{asked:>12}{answered:>10,.0f}{kept:>11,.0f}{lost:>16,.0f}{seen:>16,.0f}")
    clean = [seen for _rate, _a, _k, lost, seen in rows if lost <= ARP_AND_ND]
    best = max(clean) if clean else 0
    print(f"\nhighest answer rate with nothing lost: {best:,.0f} answers/s")


if __name__ == "__main__":
    main()
