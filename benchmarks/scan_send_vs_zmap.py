"""Send rate: ``stunscan scan`` against zmap on 198.18.0.0/15, side by side, same interface.

Run (as root; needs zmap and iproute2): ``python benchmarks/scan_send_vs_zmap.py``.

Both tools scan the 131,072 addresses of the benchmarking range (RFC 2544) on UDP 3478 with
the same 20-byte Binding request, as fast as they can, from a namespace whose only route
leads to a second namespace that drops everything (no forwarding, no listener): nothing
can leave the machine. The rate is measured the same way for both, outside the tools: a
poller in the scanner's namespace reads the interface's transmit counter every 5 ms; the
rate is the frames counted between the first and the last change, over that time.
Each tool runs with one sending thread or process (the defaults) and with two (zmap -T 2,
stunscan --senders 2). Medians of --runs runs are quoted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from scan_lab import LAB_V4, SCANNER_V4, scan_lab  # noqa: E402

RANGE = "198.18.0.0/15"
PROBE_HEX = "000100002112a442" + "00" * 12

POLLER = """
import sys, time
path = "/sys/class/net/scan0/statistics/tx_packets"
def read():
    with open(path) as f:
        return int(f.read())
base = read(); last = base; first_time = last_time = None; first_value = base
deadline = time.monotonic() + float(sys.argv[1])
print("ready", flush=True)
while time.monotonic() < deadline:
    now = time.monotonic(); value = read()
    if value != last:
        if first_time is None:
            first_time, first_value = now, last
        last_time, last = now, value
    elif last_time is not None and now - last_time > 1.5:
        break
    time.sleep(0.005)
print(last - first_value, (last_time or 0) - (first_time or 0))
"""


def measure(lab, command: list[str], limit: float = 120.0) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """(frames, seconds) the interface transmitted while ``command`` ran in the scanner ns."""
    poller = subprocess.Popen(
        lab.in_scanner(sys.executable, "-c", POLLER, str(limit)),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert poller.stdout is not None
    assert poller.stdout.readline().strip() == "ready"
    subprocess.run(lab.in_scanner(*command), check=True, capture_output=True, timeout=limit)
    out, _ = poller.communicate(timeout=limit)
    frames, seconds = out.split()
    return int(frames), float(seconds)


def lab_mac(lab) -> str:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        lab.in_lab("cat", "/sys/class/net/lab0/address"), capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with scan_lab(servers=False, routed=(RANGE,)) as lab, tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp, "empty.conf")
        empty.write_text("")
        gateway = lab_mac(lab)
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
        print(tool, "runs (packets/s):", ", ".join(f"{f / s:,.0f}" for f, s in runs))
    rates = {
        tool: statistics.median(frames / seconds for frames, seconds in runs)
        for tool, runs in results.items()
    }
    print(f"{RANGE}: 131,072 targets, UDP 3478, 20-byte Binding; median of {args.runs} runs")
    print(f"(gateway {LAB_V4}: a namespace that drops everything)\n")
    print(f"{'tool':22}{'frames':>10}{'packets/s':>12}{'vs zmap':>9}{'vs zmap -T 2':>14}")
    for tool in commands:
        frames = statistics.median(f for f, _ in results[tool])
        ratio, ratio2 = rates[tool] / rates["zmap"], rates[tool] / rates["zmap -T 2"]
        print(f"{tool:22}{frames:>10,.0f}{rates[tool]:>12,.0f}{ratio:>8.2f}x{ratio2:>13.2f}x")


if __name__ == "__main__":
    main()
