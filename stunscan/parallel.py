"""Analyse one large pcap file on several cores, with the same answer as one core.

The file is cut at record boundaries into one run per worker (forked processes). Each
worker runs the ordinary Analyzer over its run and streams back the records it makes; the
parent then merges what a cut separates: a response whose request sits in an earlier run
is paired with it (its amplification measured against the real request), and a server
seen in an earlier run is reported once, from its first response. Records of the first
run stream out at once; later runs' wait for the runs before them.

What a cut still loses, and why it is acceptable: a STUN message split across TCP segments
on both sides of a cut, and ChannelData on a non-STUN port whose TURN Allocate is in an
earlier run. Both are rare in a file large enough to be split (>= PARALLEL_MIN_BYTES).
"""

from __future__ import annotations

import ipaddress
import itertools
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, cast

from stunscan.capture import CaptureReader, pcap_boundaries
from stunscan.pcap import Analyzer, ServerTally, Stats
from stunscan.record import Record

PARALLEL_MIN_BYTES = 32 << 20
BATCH = 512


def worker_count() -> int:
    return min(os.cpu_count() or 1, 4)


def plan(path: Path, workers: int, min_bytes: int = PARALLEL_MIN_BYTES) -> list[int] | None:
    """Cut points for ``workers`` runs, or None when the file should be read by one."""
    if workers < 2 or path.stat().st_size < min_bytes:
        return None
    return pcap_boundaries(path, workers)


def _work(path: Path, start: int, end: int, channel: Any) -> None:
    analyzer = Analyzer(track_unsolicited=True)
    reader = CaptureReader(path, start, end)
    batch: list[Record] = []
    for frame in reader:
        out = analyzer.feed(frame)
        if out:
            batch.extend(out)
            if len(batch) >= BATCH:
                channel.send(("records", batch))
                batch = []
    channel.send(("records", batch))
    channel.send(("done", (analyzer.stats, analyzer.pending, analyzer.unsolicited, reader.problem)))
    channel.close()


def analyse_in_parallel(
    path: Path, cuts: list[int], emit: Callable[[Record], None], tally: ServerTally
) -> tuple[Stats, str | None]:
    """Run one worker per run between ``cuts``; ``emit`` each merged record in order.

    ``tally`` holds the servers already reported (by other files): they are not again.
    """
    context = multiprocessing.get_context("fork")
    channels = []
    processes = []
    for start, end in itertools.pairwise(cuts):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_work, args=(path, start, end, sender), daemon=True)
        process.start()
        sender.close()
        channels.append(receiver)
        processes.append(process)
    total = Stats()
    held: list[list[Record]] = [[] for _ in channels]
    results: list[Any] = [None] * len(channels)
    try:
        # Drain every pipe as data comes (a full pipe would stall its worker), streaming
        # the first run's records at once and holding the others' until the merge.
        active: dict[Any, int] = {channel: index for index, channel in enumerate(channels)}
        while active:
            for channel in wait(list(active)):
                index = active[channel]
                kind, payload = cast(tuple[str, Any], channel.recv())  # type: ignore[union-attr,call-arg]
                if kind == "done":
                    results[index] = payload
                    del active[channel]
                elif index == 0:
                    for record in payload:
                        _emit_new(record, tally, emit)
                else:
                    held[index].extend(payload)
    finally:
        for process in processes:
            process.join(timeout=0.5)
            if process.is_alive():
                process.kill()
    earlier_pending: dict[tuple[object, ...], int] = {}
    problem = None
    for index, (stats, pending, unsolicited, problem) in enumerate(results):
        request_sizes = {}
        for key in unsolicited or ():
            size = earlier_pending.pop(key, None)
            if size is not None:
                request_sizes[key] = size
        stats.paired += len(request_sizes)
        stats.unsolicited -= len(request_sizes)
        for record in held[index]:
            if record.request_size is None and record.pair_key in request_sizes:
                record.request_size = request_sizes[record.pair_key]
            _emit_new(record, tally, emit)
        earlier_pending.update(pending)
        total.add(stats)
        if problem:
            break  # a damaged run: what follows the damage is not read, as with one reader
    total.unanswered += len(earlier_pending)
    return total, problem


def _emit_new(record: Record, tally: ServerTally, emit: Callable[[Record], None]) -> None:
    server = (record.protocol, ipaddress.ip_address(record.ip).packed, record.port)
    if server not in tally.servers:
        tally.add(server, record)
        emit(record)
