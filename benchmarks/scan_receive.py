"""Receive: does ``stunscan scan`` keep every valid answer, sustained, when every target answers?

Run (as root; needs zmap and iproute2): ``python benchmarks/scan_receive.py [--runs N]
[--rates 25000,50000,...]`` (0: as fast as the tool goes).

The lab (tests/scan_lab.py): the scanner's namespace routes only 198.18.0.0/15 (RFC 2544's
benchmarking range), to a lab namespace where benchmarks/lab_reflector.py answers every
Binding request to ports 3478-3481 with a real success response, from the address and port
probed (an AF_PACKET ring, numpy batches; the lab's kernel drops the probes silently, so
no ICMP comes back). A fresh reflector per run counts exactly the answers it sent.

First the reflector alone: a plain sender (this script's ``--flood``, stunscan's frame
builder on a transmit ring, no receiver) floods it with the 524,288 probes of the
four-port scan, to show the lab answers faster than the scans below ask.

Then, per asked rate and run, the same lab for three scans:

- stunscan, four ports: ``stunscan scan 198.18.0.0/15 -p 3478-3481``, 524,288 targets, eight
  times the 65,536 frames the sniffer's receive ring holds: a sustained rate, not a burst;
- stunscan, one port (3478): 131,072 targets, two rings' worth, so it loses nothing up to
  twice the rate its sniffer sustains (the ring holds the rest until the scan ends): a
  like-for-like comparison with
- zmap, one port, as a user would run it: ``zmap -M udp -p 3478`` with the same 20-byte
  Binding request, ``-o FILE -f saddr`` (zmap's default output filter keeps each
  successful source once), ``-m`` for its metadata: libpcap's drop count (``pcap_drop``)
  tells answers its receive path missed from answers it received but did not output
  (zmap 2.1.1 leaves out a handful at any rate with nothing dropped; in a capture those
  answers are well formed and to the port it probed from).

Reported per tool and rate: answers the lab sent (the reflector's count), answers kept
(rows of stunscan's CSV; unique lines of zmap's output), lost (the difference), and the
answer rate seen at the scanner's interface (its receive counter, 1st to 99th percent:
benchmarks/interface_rate.py). Medians of --runs runs. Then the highest answer rate each
tool kept everything at (in every run; for zmap also the rate libpcap dropped nothing at),
and the ratio stunscan/zmap. A rate is flagged if the reflector's own ring dropped probes
(then the lab, not the tool, lost them), and the ICMP unreachables the scanner received
are counted (none are expected).

Safe: everything happens between the two namespaces (documentation and benchmarking
ranges only, no route out), every scan and flood has a fixed number of targets, and every
process has a time limit.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from interface_rate import rate_while, read_counter  # noqa: E402
from lab_reflector import Running, icmp_unreachables, silence  # noqa: E402
from scan_lab import LAB_V4, SCANNER_V4, Lab, scan_lab  # noqa: E402

RANGE = "198.18.0.0/15"
PORTS = "3478-3481"
FOUR_PORTS, ONE_PORT = 524_288, 131_072
PROBE_HEX = "000100002112a442" + "00" * 12
ZMAP_MAX = 10_000_000
"""zmap's -r for "as fast as it goes" (as in benchmarks/scan_send_vs_zmap.py)."""
SLACK = 60.0
"""Seconds allowed beyond a scan's expected duration before it counts as hung."""
SLOWEST_MAX = 50_000
"""For time limits: the lowest rate a scan at --rate 0 is assumed to reach."""


@dataclass(frozen=True)
class Tool:
    """One of the scans compared: its name, targets, command and how to count what it kept."""

    name: str
    targets: int
    command: Callable[[int, Path], list[str]]
    kept: Callable[[Path], int]


@dataclass(frozen=True)
class Run:
    """What one scan against a fresh reflector came to."""

    answered: int
    """Answers the lab sent (the reflector's count)."""
    kept: int
    seen: float
    """Answers/s at the scanner's interface."""
    dropped: int
    """Probes the reflector's ring had no room for (the lab fell behind)."""
    icmp: int
    """ICMP unreachables the scanner's namespace received."""
    pcap_drop: int = 0
    """zmap only: what libpcap says it dropped."""

    @property
    def lost(self) -> int:
        return self.answered - self.kept


def stunscan(ports: str) -> Callable[[int, Path], list[str]]:
    def command(rate: int, out: Path) -> list[str]:
        return [
            sys.executable, "-m", "stunscan", "scan", RANGE, "--allow", RANGE, "-p", ports,
            "--rate", str(rate), "--cooldown", "3", "--csv", str(out), "--table-rows", "0",
        ]  # fmt: skip

    return command


def csv_rows(out: Path) -> int:
    with out.open(newline="", encoding="utf-8") as handle:
        return max(0, sum(1 for _ in csv.reader(handle)) - 1)


def zmap(gateway: str, empty: Path) -> Callable[[int, Path], list[str]]:
    def command(rate: int, out: Path) -> list[str]:
        return [
            "zmap", "-M", "udp", "-p", "3478", f"--probe-args=hex:{PROBE_HEX}", "-i", "scan0",
            "-S", SCANNER_V4, "-G", gateway, "-r", str(rate or ZMAP_MAX), "-c", "3",
            "-b", str(empty), "-o", str(out), "-f", "saddr", "-m", f"{out}.json", "-q", RANGE,
        ]  # fmt: skip

    return command


def unique_lines(out: Path) -> int:
    return len(set(out.read_text().split()))


def expected_seconds(targets: int, rate: int) -> float:
    return targets / (rate or SLOWEST_MAX)


def one_run(lab: Lab, tool: Tool, rate: int, folder: Path, number: int) -> Run | None:
    """One scan against a fresh reflector; None if the tool failed (its error is printed)."""
    out = folder / f"{tool.name.replace(' ', '-').replace(',', '')}-{rate}-{number}.out"
    limit = expected_seconds(tool.targets, rate) + SLACK
    reflector = Running(lab, f"reflector-{number}", PORTS, 2 * tool.targets, limit + 10)
    icmp = icmp_unreachables(lab.scanner)
    try:
        seen = rate_while(lab, "rx_packets", tool.targets, tool.command(rate, out), limit)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        reflector.result()
        output = getattr(error, "stderr", b"") or b""
        print(f"{tool.name} at {rate or 'max'}: failed ({error})", file=sys.stderr)
        print(output.decode(errors="replace")[-2000:], file=sys.stderr)
        return None
    report = reflector.result()
    meta = Path(f"{out}.json")
    pcap_drop = json.loads(meta.read_text()).get("pcap_drop", 0) if meta.exists() else 0
    kept = tool.kept(out)
    out.unlink()  # a four-port CSV is a hundred megabytes
    return Run(
        report["answers"], kept, seen, report["dropped"], icmp_unreachables(lab.scanner) - icmp,
        pcap_drop,
    )  # fmt: skip


# ------------------------------------------------------------------ the reflector alone


def flood(count: int, gateway: str, ports: int) -> None:
    """Send ``count`` Binding requests from scan0 as fast as a transmit ring takes them:
    198.18.0.0 onwards, ``ports`` ports from 3478 (run in the scanner's namespace)."""
    import socket

    import numpy as np

    from stunscan.scan.frames import FrameBuilder, build_template
    from stunscan.scan.ring import TxRing
    from stunscan.scan.route import Route, parse_mac
    from stunscan.scan.targets import Targets

    own = parse_mac(Path("/sys/class/net/scan0/address").read_text().strip())
    builder = FrameBuilder(Route(4, "scan0", SCANNER_V4, own, parse_mac(gateway)),
                           build_template("binding"))  # fmt: skip
    index = np.arange(count, dtype=np.uint64)
    first = int.from_bytes(bytes([198, 18, 0, 0]), "big")
    targets = Targets(
        np.full(count, 4, dtype=np.uint8), np.zeros(count, dtype=np.uint64),
        first + index // ports, (3478 + index % ports).astype(np.uint16),
    )  # fmt: skip
    ids = np.random.default_rng().integers(0, 256, (count, 12), dtype=np.uint8)
    frames = builder.frames(targets, np.full(count, 40000, dtype=np.uint16), ids)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    sock.bind(("scan0", 0))
    ring = TxRing(sock)
    for start in range(0, count, ring.slots // 2):
        ring.send(frames[start : start + ring.slots // 2])


def reflector_alone(lab: Lab, gateway: str, runs: int) -> list[tuple[int, int, float, int]]:
    """(answers, ring drops, answers/s, answers per busy second) per run. The rate is the
    reflector's own, first batch to last: the interface poller would wait for answers that
    a saturated reflector dropped."""
    results = []
    for number in range(runs):
        reflector = Running(lab, f"alone-{number}", PORTS, 2 * FOUR_PORTS, SLACK)
        command = [sys.executable, str(Path(__file__).resolve()), "--flood", gateway]
        subprocess.run(lab.in_scanner(*command), check=True, capture_output=True, timeout=SLACK)
        report = reflector.result()
        rate = report["answers"] / report["seconds"] if report["seconds"] else 0.0
        results.append((report["answers"], report["dropped"], rate, report["capacity"]))
    return results


# ------------------------------------------------------------------ the report


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(tools: list[Tool], rates: list[int], results: dict[tuple[str, int], list[Run]]) -> None:
    width = 40
    print(f"{'':>12}" + "".join(f"{f'{t.name} ({t.targets:,})':>{width}}" for t in tools))
    columns = f"{'lab sent':>10}{'kept':>10}{'lost':>9}{'answers/s':>11}"
    print(f"{'asked pkt/s':>12}" + columns * len(tools))
    for rate in rates:
        line = f"{f'{rate:,}' if rate else 'max':>12}"
        for tool in tools:
            runs = results[tool.name, rate]
            if not runs:
                line += f"{'failed':>{width}}"
                continue
            flag = "*" if any(run.dropped for run in runs) else " "
            answered = median([r.answered for r in runs])
            kept, lost = median([r.kept for r in runs]), median([r.lost for r in runs])
            seen = median([r.seen for r in runs])
            line += f"{answered:>10,.0f}{kept:>10,.0f}{lost:>9,.0f}{seen:>10,.0f}{flag}"
        print(line)


def best(
    runs_by_rate: dict[int, list[Run]], lost: Callable[[Run], int]
) -> tuple[int, float] | None:
    """(asked rate, median answers/s) of the fastest rate at which ``lost`` was 0 in every
    run (and the lab dropped nothing)."""
    clean = [
        (median([r.seen for r in runs]), rate)
        for rate, runs in runs_by_rate.items()
        if runs and all(lost(r) == 0 and r.dropped == 0 for r in runs)
    ]
    if not clean:
        return None
    seen, rate = max(clean)
    return rate, seen


def _best_text(found: tuple[int, float] | None) -> str:
    if not found:
        return "none"
    return f"{found[1]:,.0f} answers/s (asked {f'{found[0]:,}' if found[0] else 'max'})"


def report(
    tools: list[Tool], rates: list[int], results: dict[tuple[str, int], list[Run]],
    alone: list[tuple[int, int, float, int]], runs: int,
) -> None:  # fmt: skip
    print(f"{RANGE}, ports {PORTS}: every target answers (benchmarks/lab_reflector.py); "
          f"median of {runs} runs\n")  # fmt: skip
    print(f"the reflector alone, flooded with {FOUR_PORTS:,} probes by a plain sender (its own "
          "rate, first batch to last), per run: "
          + ", ".join(f"{seen:,.0f} answers/s ({dropped:,} dropped)"
                      for _answered, dropped, seen, _busy in alone)
          + f"; {median([a[3] for a in alone]):,.0f} answers per busy second\n")  # fmt: skip
    table(tools, rates, results)
    print("(* the reflector's ring dropped probes in a run: the lab, not the tool, fell behind)")
    print("\nhighest answer rate with nothing lost, in every run:")
    bests = {}
    for tool in tools:
        runs_by_rate = {rate: results[tool.name, rate] for rate in rates}
        bests[tool.name] = best(runs_by_rate, lambda run: run.lost)
        print(f"  {tool.name:<20}{_best_text(bests[tool.name])}")
    zmap_runs = {rate: results["zmap, 1 port", rate] for rate in rates}
    pcap_clean = best(zmap_runs, lambda run: run.pcap_drop)
    print(f"  {'zmap, libpcap':<20}{_best_text(pcap_clean)} with nothing dropped by libpcap "
          "(zmap's pcap_drop; what it then fails to output is not counted)")  # fmt: skip
    zmap_best = bests["zmap, 1 port"] or pcap_clean
    against = "zmap, 1 port" if bests["zmap, 1 port"] else "zmap, libpcap"
    for name in ("stunscan, 1 port", "stunscan, 4 ports"):
        ours = bests[name]
        if ours and zmap_best:
            print(f"{name} / {against}: {ours[1] / zmap_best[1]:.2f}x")
    every = [run for runs in results.values() for run in runs]
    print(f"\nICMP unreachables the scanner received: {sum(r.icmp for r in every)}")
    drops = {rate: median([r.pcap_drop for r in results["zmap, 1 port", rate]]) for rate in rates}
    print("zmap's pcap_drop (median): " + ", ".join(
        f"{f'{rate:,}' if rate else 'max'}: {drop:,.0f}" for rate, drop in drops.items()
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", default="25000,50000,75000,100000,150000,200000,0", help="pkt/s; 0: max"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--flood", metavar="GATEWAY_MAC", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:
        flood(FOUR_PORTS, args.flood, 4)
        return
    rates = [int(rate) for rate in args.rates.split(",")]
    # a SIGTERM ends the with blocks too, so the namespaces are deleted
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    with scan_lab(servers=False, routed=(RANGE,)) as lab, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        silence(lab, (RANGE,))
        gateway = read_counter(lab.lab, "lab0", "address")
        # the gateway's MAC known, as on a busy network: otherwise stunscan's neighbour
        # probe (a datagram to the gateway's discard port) draws an ICMP unreachable
        subprocess.run(["ip", "-n", lab.scanner, "neigh", "replace", LAB_V4, "lladdr", gateway,
                        "dev", "scan0", "nud", "permanent"], check=True)  # fmt: skip
        empty = folder / "empty.conf"
        empty.write_text("")
        tools = [
            Tool("stunscan, 4 ports", FOUR_PORTS, stunscan(PORTS), csv_rows),
            Tool("stunscan, 1 port", ONE_PORT, stunscan("3478"), csv_rows),
            Tool("zmap, 1 port", ONE_PORT, zmap(gateway, empty), unique_lines),
        ]
        alone = reflector_alone(lab, gateway, args.runs)
        results: dict[tuple[str, int], list[Run]] = {
            (tool.name, rate): [] for tool in tools for rate in rates
        }
        started = time.monotonic()
        for number in range(args.runs):
            for rate in rates:
                for tool in tools:
                    run = one_run(lab, tool, rate, folder, number)
                    if run is not None:
                        results[tool.name, rate].append(run)
    report(tools, rates, results, alone, args.runs)
    print(f"({time.monotonic() - started:,.0f} s of scans)")


if __name__ == "__main__":
    main()
