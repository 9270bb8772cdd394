"""`stunscan probe` against nmap's stun-info script on the same coturn, side by side.

Run as root: ``python benchmarks/probe_vs_nmap.py`` (needs coturn and nmap from Debian;
nmap's UDP scan needs root). It starts coturn on loopback (tests/lab_servers.py), then
times, several runs each (medians quoted):

- ``stunscan probe 127.0.0.1:PORT`` (one Binding, the default),
- ``stunscan probe --all-variants --tcp`` (every variant, NAT discovery included),
- ``nmap -sU -Pn -p PORT --script stun-info 127.0.0.1``,
- ``stunscan --help`` (the start-up cost: Scapy must not be imported),

and prints wall times, the ratios and what each tool reported. Nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from lab_servers import coturn

STUNSCAN = [sys.executable, "-m", "stunscan"]
STUN_PORT = 3478


def timed(command: list[str], runs: int) -> tuple[float, str]:
    """Median wall seconds over ``runs``, and the last run's standard output."""
    times, output = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        times.append(time.perf_counter() - start)
        output = done.stdout
    return statistics.median(times), output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("nmap") is None:
        raise SystemExit("nmap is needed: apt-get install nmap")
    with coturn(port=STUN_PORT) as server:  # nmap runs stun-info on 3478 only
        target = f"127.0.0.1:{server.port}"
        ours, _ = timed([*STUNSCAN, "probe", target], args.runs)  # the panel, as a user sees
        _, ours_out = timed([*STUNSCAN, "probe", target, "--json", "-"], 1)
        everything, _ = timed([*STUNSCAN, "probe", target, "--all-variants", "--tcp"], args.runs)
        nmap_command = ["nmap", "-sU", "-Pn", "-n", "-p", str(server.port)]
        nmap_command += ["--script", "stun-info", "127.0.0.1"]
        theirs, nmap_out = timed(nmap_command, args.runs)
    help_time, _ = timed([*STUNSCAN, "--help"], args.runs)
    found = json.loads(ours_out.splitlines()[0])
    response = found["results"][0]["response"]
    print(f"coturn on {target}; median of {args.runs} runs\n")
    print(f"{'command':44}{'wall s':>9}{'vs nmap':>10}")
    print(f"{'stunscan probe (binding)':44}{ours:>9.3f}{theirs / ours:>9.1f}x")
    print(
        f"{'stunscan probe --all-variants --tcp':44}{everything:>9.3f}{theirs / everything:>9.1f}x"
    )
    print(f"{'nmap -sU --script stun-info':44}{theirs:>9.3f}{'':>10}")
    print(f"{'stunscan --help':44}{help_time:>9.3f}  (target < 0.3 s)")
    print("\nwhat each reported:")
    print(
        f"  stunscan: XOR-MAPPED {response['xor_mapped_address']}:{response['xor_mapped_port']},"
        f" MAPPED {response['mapped_address']}:{response['mapped_port']},"
        f" SOFTWARE {response['software']!r}, {response['response_size']} bytes,"
        f" amplification {response['amplification']}; {found['verdict']}"
    )
    lines = [line.strip("|_ ") for line in nmap_out.splitlines() if "stun-info" in line]
    lines += [line.strip("|_ ") for line in nmap_out.splitlines() if "External IP" in line]
    print(f"  nmap:     {'; '.join(lines) or '(nothing)'}")


if __name__ == "__main__":
    main()
