"""`stunscan pcap` on one machine: one process, the local process pool, a Dask LocalCluster.

Whether the default without --cluster (the forked process pool of stunscan.pcap.parallel)
should give way to Dask's LocalCluster: the same generated capture of mixed STUN traffic
(benchmarks/mixed_capture.py) analysed by the command as a user runs it (start-up
included, rows to a CSV file), three ways, rounds interleaved; medians, packets/s and
ratios to one process. The LocalCluster (2 worker processes, 1 thread each, TCP on
loopback, no dashboard) is started once, outside the timing, as a cluster would be
running already; its tasks are cut like the pool's runs (one per worker).

    python benchmarks/pcap_cluster.py [--packets 600000] [--rounds 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixed_capture import generate


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=600_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()

    from distributed import LocalCluster

    with tempfile.TemporaryDirectory(prefix="stunscan-bench-") as folder:
        capture = Path(folder) / "mixed.pcap"
        generate(capture, options.packets, seed=11)
        size = capture.stat().st_size
        chunk_mib = max(1, -(-size // options.workers) >> 20) + 1  # one task per worker
        cluster = LocalCluster(
            n_workers=options.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            protocol="tcp",
            dashboard_address=None,
            worker_dashboard_address=None,
        )
        stunscan = [sys.executable, "-m", "stunscan", "pcap", str(capture)]
        out = ["--csv", str(Path(folder) / "rows.csv")]
        ways = {
            "one process": [*stunscan, "--workers", "1", *out],
            f"local pool ({options.workers})": [*stunscan, "--workers", str(options.workers), *out],
            f"LocalCluster ({options.workers})": [
                *stunscan,
                "--cluster",
                cluster.scheduler_address,
                "--chunk-mib",
                str(chunk_mib),
                *out,
            ],
        }
        times: dict[str, list[float]] = {name: [] for name in ways}
        try:
            timed(ways["one process"])  # warm the page cache
            for _ in range(options.rounds):
                for name, command in ways.items():
                    times[name].append(timed(command))
        finally:
            cluster.close()

    base = statistics.median(times["one process"])
    print(f"{options.packets:,} packets, {size / 2**20:.1f} MiB; median of {options.rounds}")
    print(f"{'':22} {'seconds':>8} {'packets/s':>11} {'vs one process':>15}")
    for name, values in times.items():
        median = statistics.median(values)
        rate = options.packets / median
        print(f"{name:22} {median:8.2f} {rate:11,.0f} {base / median:14.2f}x")


if __name__ == "__main__":
    main()
