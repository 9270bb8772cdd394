"""`stunscan decode` / `explain` on huge messages: time and peak memory, side by side
with tshark's full dissection (`tshark -V`) of the same messages in a capture.

The message is the corpus's damaged/attrs-16383.bin (65,552 bytes, 16,383 empty
attributes), plus smaller ones of the same shape (1,024 and 4,096 attributes) so that the
growth with the number of attributes shows, then issue 14's capture of 12 such messages
(788 KB over one TCP connection) so that the growth with the number of messages shows:
both must be linear. Each figure is the median of RUNS runs of the command as a user runs
it (interpreter start and imports included), wall time and peak resident memory from
/usr/bin/time -v; "own" is the median less the start-up floor (the same command on a
20-byte message). Run: python benchmarks/decode_large.py [--runs N]
"""

from __future__ import annotations

import argparse
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
    message fits in no IP datagram), IPv4, as a classic pcap of raw IP packets; several
    messages are sent back to back on the one connection."""
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


def row(label: str, figures: tuple[float, float], floor: float, other: str = "") -> None:
    seconds, peak = figures
    print(f"  {label:<36}{seconds:>8.2f}{peak:>7.0f}{seconds - floor:>8.2f}  {other}")


def main() -> None:
    global RUNS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per figure (median)")
    RUNS = parser.parse_args().runs
    tshark = shutil.which("tshark")
    with open("/proc/loadavg") as handle:
        print(f"load average at start: {handle.read().split()[0]} (shared machine)")
    tiny = message(0).hex()
    floors = {
        "decode": measure([str(STUNSCAN), "decode", tiny])[0],
        "explain": measure([str(STUNSCAN), "explain", tiny])[0],
    }
    print(
        f"start-up floor (a 20-byte message, Scapy imported): decode {floors['decode']:.2f} s,"
        f" explain {floors['explain']:.2f} s; median of {RUNS}\n"
    )
    header = f"  {'command':<36}{'seconds':>8}{'MiB':>7}{'own s':>8}  tshark -V: s, MiB"
    with tempfile.TemporaryDirectory() as folder:
        biggest = b""
        for count in (1024, 4096, 16383):
            raw = Path(folder) / f"attrs-{count}.bin"
            if count == 16383:
                raw = CORPUS / "damaged" / "attrs-16383.bin"
                biggest = raw.read_bytes()
            else:
                raw.write_bytes(message(count))
            pcap = Path(folder) / f"attrs-{count}.pcap"
            capture(raw.read_bytes(), pcap)
            print(f"{count:,} attributes ({raw.stat().st_size:,} bytes)\n{header}")
            other = measure([tshark, "-V", "-r", str(pcap)]) if tshark else None
            for label, command in (
                ("decode FILE", ["decode", str(raw)]),
                ("decode --json - FILE", ["decode", "--json", "-", str(raw)]),
                ("explain FILE", ["explain", str(raw)]),
                ("decode CAPTURE", ["decode", str(pcap)]),
            ):
                figures = measure([str(STUNSCAN), *command])
                versus = ""
                if other and label == "decode CAPTURE":
                    ratio = other[0] / figures[0]
                    versus = f"{other[0]:.2f} s, {other[1]:.0f} MiB: stunscan {ratio:.2f}x"
                row(label, figures, floors[command[0]], versus)
        twelve = Path(folder) / "attrs-16383-x12.pcap"
        capture(biggest * 12, twelve)
        print(f"\n12 such messages in one capture ({twelve.stat().st_size:,} bytes)\n{header}")
        other = measure([tshark, "-V", "-r", str(twelve)]) if tshark else None
        for label, command in (
            ("decode CAPTURE", ["decode", str(twelve)]),
            ("decode --json - CAPTURE", ["decode", "--json", "-", str(twelve)]),
            ("explain CAPTURE", ["explain", str(twelve)]),
            ("pcap CAPTURE", ["pcap", str(twelve)]),
        ):
            figures = measure([str(STUNSCAN), *command])
            floor = floors.get(command[0], floors["decode"])
            versus = (
                f"{other[0]:.2f} s, {other[1]:.0f} MiB: stunscan {other[0] / figures[0]:.2f}x"
                if other
                else ""
            )
            per = f"; {(figures[0] - floor) / 12:.3f} s a message" if command[0] != "pcap" else ""
            row(label, figures, floor, versus + per)


if __name__ == "__main__":
    main()
