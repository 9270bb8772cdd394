"""Analyse one large pcap file on several cores, with the same answer as one core.

The file is cut at record boundaries into one run per worker (forked processes). Each
worker runs the ordinary Analyzer over its run (through ``stunscan.pcap.feed``) and streams
back what it finds as undecoded sightings (``stunscan.pcap.sighting``); the parent then merges
what a cut separates: a response whose request sits in an earlier run is paired with it
(its amplification measured against the real request), and a server seen in an earlier run
is reported once, from its first response. Only the parent decodes, and only the sightings
it reports. Those of the first run stream out at once; later runs' wait for the runs
before them.

What a cut still loses, and why it is acceptable: a STUN message split across TCP segments
on both sides of a cut; ChannelData on a non-STUN port whose TURN Allocate is in an earlier
run; an answer to a CHANGE-REQUEST (from another address) whose request is in an earlier
run. All are rare in a file large enough to be split (>= PARALLEL_MIN_BYTES).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from multiprocessing.connection import wait
from pathlib import Path
from typing import IO, Any

from stunscan.capture.files import pcap_boundaries
from stunscan.pcap.analyzer import Analyzer, Stats, server_key
from stunscan.pcap.feed import PcapFeed
from stunscan.pcap.sighting import Sighting
from stunscan.record import Record
from stunscan.tally import ServerTally

PARALLEL_MIN_BYTES = 32 << 20
BATCH = 512
_RECORDS, _DONE = b"R", b"D"
"""The tag before each pickle on a worker's pipe: a batch of records, or the final state."""


def worker_count() -> int:
    return min(os.cpu_count() or 1, 4)


def plan(path: Path, workers: int, min_bytes: int = PARALLEL_MIN_BYTES) -> list[int] | None:
    """Cut points for ``workers`` runs, or None when the file should be read by one."""
    if workers < 2 or path.stat().st_size < min_bytes:
        return None
    return pcap_boundaries(path, workers)


def _work(path: Path, start: int, end: int, channel: Any) -> None:
    analyzer = Analyzer(track_unsolicited=True)
    reader = PcapFeed(path, analyzer, start, end)
    batch: list[Sighting] = []
    for out in reader:
        if out:
            batch.extend(out)
            if len(batch) >= BATCH:
                channel.send_bytes(_RECORDS + pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
                batch = []
    channel.send_bytes(_RECORDS + pickle.dumps(batch, pickle.HIGHEST_PROTOCOL))
    done = (analyzer.stats, analyzer.pending, analyzer.unsolicited, reader.problem)
    channel.send_bytes(_DONE + pickle.dumps(done, pickle.HIGHEST_PROTOCOL))
    channel.close()


def analyse_in_parallel(
    path: Path,
    cuts: list[int],
    emit: Callable[[Record], None],
    tally: ServerTally,
    emit_sighting: Callable[[Sighting], None] | None = None,
) -> tuple[Stats, str | None]:
    """Run one worker per run between ``cuts``; ``emit`` each merged record in order.

    ``tally`` holds the servers already reported (by other files): they are not again.
    With ``emit_sighting`` the records are handed over undecoded instead, marked
    ``first``; the callee then counts their figures in ``tally`` (see Analyzer.record).
    """
    if emit_sighting is None:
        emit_sighting = _decoding(emit, tally)
    context = multiprocessing.get_context("fork")
    channels: list[Any] = []
    processes = []
    for start, end in itertools.pairwise(cuts):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_work, args=(path, start, end, sender), daemon=True)
        process.start()
        sender.close()
        channels.append(receiver)
        processes.append(process)
    with ExitStack() as stack:
        # Later runs' records wait, still pickled, in temporary files: memory stays flat.
        held = [stack.enter_context(tempfile.TemporaryFile()) for _ in channels]
        try:
            results = _collect(channels, held, tally, emit_sighting)
        finally:
            for process in processes:
                process.join(timeout=0.5)
                if process.is_alive():
                    process.kill()
        return _merge(results, held, tally, emit_sighting)


def _collect(
    channels: list[Any],
    held: Sequence[IO[bytes]],
    tally: ServerTally,
    emit: Callable[[Sighting], None],
) -> list[Any]:
    """Drain every pipe as data comes (a full pipe would stall its worker), emitting the
    first run's records at once and spilling the others' to their files."""
    results: list[Any] = [None] * len(channels)
    active = {channel: index for index, channel in enumerate(channels)}
    while active:
        for channel in wait(list(active)):
            index = active[channel]
            message = channel.recv_bytes()  # type: ignore[union-attr]
            if message[:1] == _DONE:
                results[index] = pickle.loads(message[1:])
                del active[channel]
            elif index:
                held[index].write(len(message).to_bytes(4, "big") + message)
            else:
                for sighting in pickle.loads(message[1:]):
                    _emit_new(sighting, tally, emit)
    return results


def _merge(
    results: list[Any],
    held: Sequence[IO[bytes]],
    tally: ServerTally,
    emit: Callable[[Sighting], None],
) -> tuple[Stats, str | None]:
    """Run by run: pair responses with requests an earlier run left pending, then emit the
    held records of servers not reported yet."""
    total = Stats()
    earlier_pending: dict[bytes, tuple[int, float]] = {}
    problem = None
    for index, (stats, pending, unsolicited, problem) in enumerate(results):
        request_sizes = {}
        for key in unsolicited or ():
            request = earlier_pending.pop(key, None)
            if request is not None:
                request_sizes[key] = request[0]
        stats.paired += len(request_sizes)
        stats.unsolicited -= len(request_sizes)
        spill = held[index]
        spill.seek(0)
        while size := int.from_bytes(spill.read(4), "big"):
            for sighting in pickle.loads(spill.read(size)[1:]):
                if sighting.request_size is None and sighting.pair_key in request_sizes:
                    sighting.request_size = request_sizes[sighting.pair_key]
                _emit_new(sighting, tally, emit)
        earlier_pending.update(pending)
        total.add(stats)
        if problem:
            break  # a damaged run: what follows the damage is not read, as with one reader
    total.unanswered += len(earlier_pending)
    return total, problem


def _emit_new(sighting: Sighting, tally: ServerTally, emit: Callable[[Sighting], None]) -> None:
    """Emit a worker's sighting, unless its server was reported already."""
    server = server_key(sighting.transport, sighting.src, sighting.sport)
    if server not in tally.servers:
        tally.servers.add(server)
        sighting.first = True
        emit(sighting)


def _decoding(emit: Callable[[Record], None], tally: ServerTally) -> Callable[[Sighting], None]:
    def emit_sighting(sighting: Sighting) -> None:
        record = sighting.record()
        tally.count(record)
        emit(record)

    return emit_sighting
