"""`stunscan decode` / `explain` on one huge message: time and peak memory, side by side
with tshark's full dissection (`tshark -V`) of the same message in a capture.

The message is the corpus's damaged/attrs-16383.bin (65,552 bytes, 16,383 empty
attributes), plus smaller ones of the same shape (1,024 and 4,096 attributes) so that the
growth with the number of attributes shows: it must be linear. Each figure is the median of
RUNS runs of the command as a user runs it (interpreter start and imports included), wall
time and peak resident memory from /usr/bin/time -v. Run: python benchmarks/decode_large.py
"""

from __future__ import annotations

import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from corpus import CORPUS

RUNS = 3
STUNSCAN = Path(sys.executable).with_name("stunscan")


def message(attributes: int) -> bytes:
    """A Binding request of ``attributes`` empty attributes of code 0x001a, as the corpus's."""
    body = b"\x00\x1a\x00\x00" * attributes
    return struct.pack("!HHI", 0x0101, len(body), 0x2112A442) + bytes(12) + body


def capture(data: bytes, path: Path) -> None:
    """``data`` sent over TCP to port 3478 in segments of at most 32 KiB (a 65,552-byte
    message fits in no IP datagram), IPv4, as a classic pcap of raw IP packets."""
    records = []
    for offset in range(0, len(data), 1 << 15):
        chunk = data[offset : offset + (1 << 15)]
        tcp = struct.pack("!HHIIBBHHH", 40000, 3478, 1000 + offset, 0, 5 << 4, 0x18, 65535, 0, 0)
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 40 + len(chunk), 0, 0, 64, 6, 0, bytes([192, 0, 2, 1]),
            bytes([192, 0, 2, 9]),
        )  # fmt: skip
        packet = ip + tcp + chunk
        records.append(struct.pack("<IIII", 1_700_000_000, offset, len(packet), len(packet)))
        records.append(packet)
    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101)
    path.write_bytes(header + b"".join(records))


def measure(command: list[str]) -> tuple[float, float]:
    """Median wall seconds and peak MiB of ``command`` over RUNS runs."""
    times, peaks = [], []
    for _ in range(RUNS):
        done = subprocess.run(
            ["/usr/bin/time", "-v", *command],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
        peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
        if done.returncode not in (0, 1) or wall is None or peak is None:
            raise SystemExit(f"{command[:2]} failed: {done.stderr[-400:]}")
        hours, minutes, seconds = wall.groups()
        times.append(int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds))
        peaks.append(int(peak.group(1)) / 1024)
    return statistics.median(times), statistics.median(peaks)


def main() -> None:
    tshark = shutil.which("tshark")
    with open("/proc/loadavg") as handle:
        print(f"load average at start: {handle.read().split()[0]} (shared machine)")
    floor = measure([str(STUNSCAN), "decode", message(0).hex()])
    print(
        f"stunscan decode of a 20-byte message (start-up floor, Scapy imported):"
        f" {floor[0]:.2f} s, {floor[1]:.0f} MiB\n"
    )
    print(f"{'attributes':>10}  {'command':<34}{'seconds':>8}{'MiB':>7}  tshark -V: s, MiB, ratio")
    with tempfile.TemporaryDirectory() as folder:
        for count in (1024, 4096, 16383):
            raw = Path(folder) / f"attrs-{count}.bin"
            if count == 16383:
                raw = CORPUS / "damaged" / "attrs-16383.bin"
            else:
                raw.write_bytes(message(count))
            pcap = Path(folder) / f"attrs-{count}.pcap"
            capture(raw.read_bytes(), pcap)
            other = measure([tshark, "-V", "-r", str(pcap)]) if tshark else None
            for label, command in (
                ("decode FILE", ["decode", str(raw)]),
                ("decode --json - FILE", ["decode", "--json", "-", str(raw)]),
                ("explain FILE", ["explain", str(raw)]),
                ("decode CAPTURE", ["decode", str(pcap)]),
            ):
                seconds, peak = measure([str(STUNSCAN), *command])
                versus = ""
                if other and label == "decode CAPTURE":
                    ratio = other[0] / seconds
                    versus = f"  {other[0]:.2f} s, {other[1]:.0f} MiB, stunscan {ratio:.2f}x"
                print(
                    f"{count:>10}  {label:<34}{seconds:>8.2f}{peak:>7.0f}"
                    f"  (over the floor: {seconds - floor[0]:.2f} s){versus}"
                )


if __name__ == "__main__":
    main()
