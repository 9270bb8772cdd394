"""The receive ring on a real interface: order, wrap-around, lengths, and the drop count.

Each test runs a script in a network namespace of its own (created and deleted here), on
its loopback interface only, so nothing it sends can reach anything else. A UDP socket
that nobody reads holds the destination port, so the kernel answers no datagram with an
ICMP unreachable (the scan's filter would pass those too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and iproute2"
)

SCRIPT = r"""
import json, socket, sys
from stunscan.scan.sniffer import open_capture

PORT = 40000
capture = open_capture("lo", (PORT, PORT))
ring = capture.ring
holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # so that no ICMP answers
holder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
holder.bind(("127.0.0.1", PORT))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.bind(("127.0.0.1", 41000))

def send(first, count):
    for number in range(first, first + count):
        sender.sendto(number.to_bytes(4, "big") * (1 + number % 7), ("127.0.0.1", PORT))

def drain():
    numbers, lengths = [], []
    while ring.wait(0.2):
        frames = ring.take(int(sys.argv[2]))
        for index in range(len(frames)):
            frame = ring.frame(frames, index)
            numbers.append(int.from_bytes(frame[42:46], "big"))
            lengths.append([len(frame), int(frames.wire[index])])
        ring.release(frames)
    return numbers, lengths

result = {"slots": ring.slots}
overflow = int(sys.argv[1])
send(0, ring.slots + overflow)  # more than the ring holds, nothing read meanwhile
result["first"] = drain()
result["first_statistics"] = ring.statistics()
start = ring.slots + overflow
laps = []
for lap in range(3):  # around the ring again, reading as it fills
    send(start, ring.slots // 2 + 123)
    laps.append(drain()[0])
    start += ring.slots // 2 + 123
result["laps"] = laps
result["lap_statistics"] = ring.statistics()
print(json.dumps(result))
"""


@pytest.fixture
def namespace() -> Iterator[str]:
    name = f"stunscan-ring-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def run(namespace: str, overflow: int, batch: int) -> dict:  # type: ignore[type-arg]
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, sys.executable, "-c", SCRIPT, str(overflow), str(batch)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("batch", [8192, 100])
def test_frames_come_in_order_and_a_full_ring_counts_its_drops(namespace: str, batch: int) -> None:
    overflow = 777
    result = run(namespace, overflow, batch)
    slots = result["slots"]
    numbers, lengths = result["first"]
    assert numbers == list(range(slots))  # the ring kept the first ones, in order
    assert result["first_statistics"] == [slots + overflow, overflow]  # and counted the rest
    for number, (captured, wire) in zip(numbers, lengths, strict=True):
        assert captured == wire == 42 + 4 * (1 + number % 7)  # whole frames, exact lengths
    start = slots + overflow
    for lap in result["laps"]:  # wrapping around: nothing lost, nothing repeated
        assert lap == list(range(start, start + slots // 2 + 123))
        start += slots // 2 + 123
    assert result["lap_statistics"] == [3 * (slots // 2 + 123), 0]
