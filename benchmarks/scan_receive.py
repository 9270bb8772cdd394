"""Receive: does ``stunscan scan`` keep every valid answer when every target answers?

Run (as root): ``python benchmarks/scan_receive.py``.

A lab namespace holds the whole of 198.18.0.0/17 (an AnyIP local route) and a responder
(tests/lab_responders.py ``reflect``) that answers every probe with a real Binding success
response, from the address the probe was sent to. The scanner's namespace routes only to
the lab. For each asked rate, stunscan scans the 32,768 addresses; the answers the lab's
interface transmitted (its counter) are compared with the valid rows stunscan wrote. The
answer rate is measured at the scanner's interface (its receive counter, polled every 5 ms,
from the 1st to the 99th percent of the answers, so that stray ARP or ND frames do not
count). Reported: per rate, frames the lab sent (its answers, plus a few ARP/ND frames, so
"lost" is an upper bound), rows kept, and the highest answer rate with nothing lost. Where
the lab sent fewer than 32,768 answers, the Python responder itself fell behind.
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
from scan_lab import Lab, scan_lab  # noqa: E402

RANGE = "198.18.0.0/17"
TARGETS = 32768
ARP_AND_ND = 8
"""Frames the lab sends that are not answers (ARP, neighbour discovery): not losses."""
RESPONDER = str(HERE.parent / "tests" / "lab_responders.py")

COUNTER = """
import sys, time
path = "/sys/class/net/scan0/statistics/rx_packets"
def read():
    with open(path) as f:
        return int(f.read())
expected, limit = int(sys.argv[1]), float(sys.argv[2])
base = read(); low = high = None
deadline = time.monotonic() + limit
print("ready", flush=True)
while time.monotonic() < deadline and high is None:
    now = time.monotonic(); got = read() - base
    if low is None and got >= expected * 0.01:
        low = now
    if got >= expected * 0.99:
        high = now
    time.sleep(0.002)
print(0.98 * expected / (high - low) if low and high and high > low else 0.0)
"""


def _counter(lab: Lab, namespace: str, device: str, name: str) -> int:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "cat", f"/sys/class/net/{device}/statistics/{name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(result.stdout)


def one_run(lab: Lab, rate: int, folder: Path) -> tuple[int, int, float]:
    """(frames the lab sent, valid rows kept, answer rate seen at the scanner)."""
    out = folder / f"rows-{rate}.csv"
    before = _counter(lab, lab.lab, "lab0", "tx_packets")
    poller = subprocess.Popen(
        lab.in_scanner(sys.executable, "-c", COUNTER, str(TARGETS), "120"),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert poller.stdout is not None and poller.stdout.readline().strip() == "ready"
    command = [
        sys.executable, "-m", "stunscan", "scan", RANGE, "--allow", RANGE, "--rate", str(rate),
        "--cooldown", "3", "--csv", str(out), "--table-rows", "0",
    ]  # fmt: skip
    subprocess.run(lab.in_scanner(*command), check=True, capture_output=True, timeout=300)
    seen = float(poller.communicate(timeout=150)[0])
    answered = _counter(lab, lab.lab, "lab0", "tx_packets") - before
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
