"""A packet rate measured outside the tool: an interface counter in the scanner's namespace.

Shared by the scan benchmarks so that every tool is timed the same way. A poller inside the
namespace reads ``/sys/class/net/scan0/statistics/<counter>`` every 2 ms while the command
runs; the rate is the frames between the 1st and the 99th percent of the ``expected`` count
over that time, so that a stray ARP or ND frame before or after cannot stretch it.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

POLLER = """
import sys, time
path = "/sys/class/net/scan0/statistics/" + sys.argv[1]
def read():
    with open(path) as f:
        return int(f.read())
expected, limit = int(sys.argv[2]), float(sys.argv[3])
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


def read_counter(namespace: str, device: str, name: str) -> str:
    """``/sys/class/net/<device>/<name>`` as seen inside ``namespace``."""
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, "cat", f"/sys/class/net/{device}/{name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def rate_while(
    lab: Any, counter: str, expected: int, command: list[str], limit: float = 300.0
) -> float:
    """Packets/s on scan0's ``counter`` (tx_packets, rx_packets) while ``command`` runs in
    the scanner's namespace; 0.0 if fewer than 99% of ``expected`` were counted."""
    poller = subprocess.Popen(
        lab.in_scanner(sys.executable, "-c", POLLER, counter, str(expected), str(limit)),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert poller.stdout is not None and poller.stdout.readline().strip() == "ready"
    subprocess.run(lab.in_scanner(*command), check=True, capture_output=True, timeout=limit)
    return float(poller.communicate(timeout=limit)[0])
