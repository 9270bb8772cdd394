"""Analyse one large pcap file on several cores, with the same answer as one core.

The file is cut at record boundaries into one run per worker (forked processes). Each
worker runs the ordinary Analyzer over its run (:func:`analyse_run`, through
``stunscan.pcap.feed``) and streams back what it finds as undecoded sightings
(``stunscan.pcap.sighting``) and blocks of them (``stunscan.pcap.block``), each pipe read
by a thread of the parent as data comes; :class:`RunMerger` then mends what a cut
separates: a response whose request sits in an earlier run is paired with it (its
amplification measured against the real request), and a server seen in an earlier run is
reported once, from its first response. Only the parent decodes, and only the sightings
it reports. The runs are merged in order: a run's sightings stream out as soon as every
run before it is merged, later runs' wait, still pickled, in temporary files. The Dask
runs of ``stunscan.pcap.cluster`` use the same runs and the same merger, over many files
and machines.

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
import queue
import re
import signal
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from stunscan.capture.files import PCAP_MAGICS, CaptureError, pcap_boundaries
from stunscan.capture.stream import TCP_BUFFER_BUDGET
from stunscan.pcap.analyzer import Analyzer, Stats, server_key
from stunscan.pcap.block import SightingBlock
from stunscan.pcap.feed import PcapFeed
from stunscan.pcap.pending import KEY_BYTES
from stunscan.pcap.sighting import Sighting
from stunscan.record import Record
from stunscan.tally import ServerTally

PARALLEL_MIN_BYTES = 32 << 20
INBOX = 64
"""Messages the workers may have sent ahead of the merge (at most a few MB each: a bound
on the memory that reading ahead takes)."""
BATCH = 512
_RECORDS, _DONE = b"R", b"D"
"""The tag before each pickle a run sends: a batch of sightings, or the final state."""

_PACKETS_READ = re.compile(r" after (\d+) packets$")
"""How a reader's problem ends (see CaptureReader._stop)."""

Pending = tuple[bytes, np.ndarray, np.ndarray]
"""Requests still pending: their pairing keys end to end, their sizes and capture times
(arrays pickle in one piece, where a dict of 100,000 keys takes a tenth of a second)."""
RunState = tuple[Stats, Pending, bytes, str | None]
"""What a run leaves for the merge: its counts, its requests still pending, the pairing keys
of its unanswered-for responses end to end, and why it stopped early (or None)."""
NO_PENDING: Pending = (b"", np.empty(0, np.int64), np.empty(0, np.float64))


def worker_count() -> int:
    return min(os.cpu_count() or 1, 4)


def plan(path: Path, workers: int, min_bytes: int = PARALLEL_MIN_BYTES) -> list[int] | None:
    """Cut points for ``workers`` runs, or None when the file should be read by one."""
    if workers < 2 or path.stat().st_size < min_bytes:
        return None
    return boundaries(path, workers)


CHAIN = 8
"""Records in a row that must agree before an offset is trusted as a record boundary."""
SAME_TIME = 86400
"""Seconds two neighbouring records may lie apart: captures do not pause for longer."""


def boundaries(path: Path, parts: int) -> list[int] | None:
    """pcap_boundaries, each cut moved on to the first offset where :data:`CHAIN`
    records in a row also lie within a day of each other; None if one cannot be.

    pcap_boundaries takes a chain of plausible records (timestamps within a decade of the
    first packet's) for a boundary; in a large file a record header imitated by packet
    bytes sometimes passes, its length then landing on a true record (seen: a 12,334-byte
    "record" 8.6 years later than its neighbours). Neighbouring records' timestamps expose
    it; the chain after it is made of true records.
    """
    cuts = pcap_boundaries(path, parts)
    if cuts is None:
        return None
    with path.open("rb") as handle:
        head = handle.read(24)
        record = struct.Struct(PCAP_MAGICS[head[:4]][0] + "IIII")
        for index in range(1, len(cuts) - 1):
            handle.seek(cuts[index])
            window = handle.read(1 << 20)
            moved = _trusted_offset(window, record)
            if moved is None:
                return None
            cuts[index] += moved
            if cuts[index] >= cuts[index + 1]:
                return None
    return cuts


def _trusted_offset(window: bytes, record: struct.Struct) -> int | None:
    """The first record offset in the chain starting at 0 from which CHAIN records lie
    within SAME_TIME of each other."""
    offsets: list[int] = []
    times: list[int] = []
    at = 0
    while at + 16 <= len(window) and len(offsets) < 64:
        seconds, _, caplen, _ = record.unpack_from(window, at)
        offsets.append(at)
        times.append(seconds)
        at += 16 + caplen
    for first in range(len(offsets) - CHAIN + 1):
        run = times[first : first + CHAIN]
        if all(abs(a - b) < SAME_TIME for a, b in itertools.pairwise(run)):
            return offsets[first]
    return None


def analyse_run(
    path: Path,
    start: int | None = None,
    end: int | None = None,
    *,
    all_messages: bool = False,
    shown_as: str | None = None,
    tcp_buffer: int = TCP_BUFFER_BUDGET,
    earlier: bool = True,
    later: bool = True,
) -> Iterator[bytes]:
    """The messages of one run (the records between two offsets, or a whole file): tagged
    pickled batches of sightings, then the final :data:`RunState`. A file that cannot be
    read ends its run with the reason as the problem (``shown_as`` names it there);
    ``tcp_buffer`` is this run's share of the TCP reassembly budget. ``earlier``: whether
    the merge has runs before this one (else no response here can pair with theirs, and
    the unanswered-for ones are not kept); ``later``: whether it has runs after (else the
    requests still pending are only counted as unanswered, not sent)."""
    analyzer = Analyzer(all_messages=all_messages, track_unsolicited=earlier, tcp_buffer=tcp_buffer)
    reader = PcapFeed(path, analyzer, start, end, keep_table=True)
    batch: list[Sighting | SightingBlock] = []
    rows = 0
    problem = None
    try:
        for out in reader.items():
            if out:
                batch.extend(out)
                rows += sum(len(item) if isinstance(item, SightingBlock) else 1 for item in out)
                if rows >= BATCH:
                    yield _RECORDS + pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
                    batch = []
                    rows = 0
        problem = reader.problem
    except CaptureError as exc:
        problem = str(exc)
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror or exc}"
    if problem and shown_as:
        problem = problem.replace(str(path), shown_as)
    yield _RECORDS + pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
    pending = NO_PENDING
    if later:
        pending = _pending(reader)
    else:  # no run after this one to answer them
        analyzer.stats.unanswered += reader.pairer.pending_count()
    unsolicited = b"".join(analyzer.unsolicited or ())
    done: RunState = (analyzer.stats, pending, unsolicited, problem)
    yield _DONE + pickle.dumps(done, pickle.HIGHEST_PROTOCOL)


def _pending(reader: PcapFeed) -> Pending:
    """The requests a run leaves pending, from the fast path's table or the dicts."""
    table = reader.pairer.table
    if reader.pairer.owned:
        live = np.flatnonzero(table.alive[: table.end])
        return table.words[live].tobytes(), table.sizes[live], table.times[live]
    pending = reader.analyzer.pending
    values = list(pending.values())
    return (
        b"".join(pending),
        np.array([size for size, _ in values], np.int64),
        np.array([when for _, when in values], np.float64),
    )


def failed_run(problem: str) -> bytes:
    """The final message of a run that could not be made at all (a lost worker)."""
    return _DONE + pickle.dumps((Stats(), NO_PENDING, b"", problem), pickle.HIGHEST_PROTOCOL)


def _keys(packed: bytes) -> list[bytes]:
    """Pairing keys end to end, as bytes each."""
    return np.frombuffer(packed, KEY_BYTES).tolist()  # type: ignore[no-any-return]


class RunMerger:
    """Merge the runs of one or more files, in order, into what one reader would report.

    Give it every message of every run (:meth:`accept`), in any interleaving of the runs
    but in order within a run; ``files[i]`` says which file run ``i`` belongs to. A
    response that an earlier run's pending request answers is paired with it; a server
    already in ``tally`` is not reported again. After a run that stopped early (damage,
    truncation) the rest of its file is dropped, as one reader would never reach it.
    """

    def __init__(
        self,
        files: Sequence[int],
        tally: ServerTally,
        emit: Callable[[Sighting], None],
        *,
        all_messages: bool = False,
    ) -> None:
        self.files = list(files)
        self.tally = tally
        self.emit = emit
        self.all_messages = all_messages
        self.frontier = 0
        """The first run not merged yet: its sightings go out as they come."""
        self.results: list[RunState | None] = [None] * len(self.files)
        self.held: dict[int, IO[bytes]] = {}
        self.earlier_pending: dict[bytes, tuple[int, float]] = {}
        self.stats = Stats()
        self.problems: list[str] = []
        self._dropped_file: int | None = None
        self._frames_in_file = 0

    def accept(self, index: int, message: bytes) -> bool:
        """One message of run ``index``; True when it was the run's last."""
        if message[:1] == _DONE:
            self.results[index] = pickle.loads(message[1:])
            if index == self.frontier:
                self._advance()
            return True
        if index == self.frontier:
            self._emit_batch(index, message)
        else:
            spill = self.held.get(index)
            if spill is None:
                # closed by _replay or close(): it lives as long as the run is held
                spill = self.held[index] = tempfile.TemporaryFile()  # noqa: SIM115
            spill.write(len(message).to_bytes(4, "big") + message)
        return False

    def finish(self) -> tuple[Stats, list[str]]:
        """Every run merged: the counts (requests never answered included) and problems."""
        if self.frontier < len(self.files):
            raise RuntimeError(f"run {self.frontier} of {len(self.files)} never finished")
        self.stats.unanswered += len(self.earlier_pending)
        self.earlier_pending.clear()
        return self.stats, self.problems

    def close(self) -> None:
        """Drop what is still held (an interrupted merge)."""
        for spill in self.held.values():
            spill.close()
        self.held.clear()

    def _advance(self) -> None:
        while self.frontier < len(self.files):
            state = self.results[self.frontier]
            if state is None:
                return
            self._close_run(self.frontier, state)
            self.results[self.frontier] = None
            self.frontier += 1
            self._replay(self.frontier)

    def _replay(self, index: int) -> None:
        """The batches a run sent before it became the frontier, in order."""
        spill = self.held.pop(index, None)
        if spill is None:
            return
        with spill:
            spill.seek(0)
            while size := int.from_bytes(spill.read(4), "big"):
                self._emit_batch(index, spill.read(size))

    def _close_run(self, index: int, state: RunState) -> None:
        """Pair the run's unanswered-for responses with earlier requests in its counts,
        and pass its own pending requests on to the runs after it."""
        if self.files[index] == self._dropped_file:
            return
        stats, (pending_keys, sizes, times), unsolicited, problem = state
        paired = 0
        earlier = self.earlier_pending
        if earlier:
            for key in _keys(unsolicited):
                if earlier.pop(key, None) is not None:
                    paired += 1
        stats.paired += paired
        stats.unsolicited -= paired
        earlier.update(
            zip(_keys(pending_keys), zip(sizes.tolist(), times.tolist(), strict=True), strict=True)
        )
        self.stats.add(stats)
        if index == 0 or self.files[index - 1] != self.files[index]:
            self._frames_in_file = 0
        if problem:
            # a run counts its own packets: the file's count is the one a reader would give
            counted = _PACKETS_READ.search(problem)
            if counted:
                frames = self._frames_in_file + int(counted[1])
                problem = f"{problem[: counted.start()]} after {frames} packets"
            self.problems.append(problem)
            self._dropped_file = self.files[index]
        self._frames_in_file += stats.frames

    def _emit_batch(self, index: int, message: bytes) -> None:
        if self.files[index] == self._dropped_file:
            return
        earlier = self.earlier_pending
        for item in pickle.loads(message[1:]):
            if isinstance(item, SightingBlock):
                self._emit_block(item)
                continue
            sighting = item
            key = sighting.pair_key
            if sighting.request_size is None and key is not None:
                request = earlier.get(key)
                if request is not None:
                    sighting.request_size = request[0]
            self._emit_new(sighting)

    def _emit_block(self, block: SightingBlock) -> None:
        """A block's sightings whose servers no earlier run reported (blocks hold each
        server's first response of the run; never made with ``all_messages``)."""
        seen = self.tally.servers
        rows = []
        for row, server in enumerate(block.server_keys()):
            if server not in seen:
                seen.add(server)
                rows.append(row)
        if not rows:
            return
        earlier = self.earlier_pending
        picked = np.array(rows, np.intp)
        sizes: list[int | None] = []
        for size, key in zip(
            block.request_sizes[picked].tolist(), block.pair_keys(picked), strict=True
        ):
            if size < 0:  # unsolicited in its run: perhaps asked in an earlier one
                request = earlier.get(key)
                sizes.append(None if request is None else request[0])
            else:
                sizes.append(size)
        for sighting in block.sightings(picked, sizes):
            self.emit(sighting)

    def _emit_new(self, sighting: Sighting) -> None:
        """Emit a run's sighting, unless its server was reported already (with
        ``all_messages`` every message goes out, the first of a server marked so)."""
        sighting.first = False
        if sighting.pair_key is None:  # a request or an indication (all_messages only)
            self.emit(sighting)
            return
        server = server_key(sighting.transport, sighting.src, sighting.sport)
        if server not in self.tally.servers:
            self.tally.servers.add(server)
            sighting.first = True
            self.emit(sighting)
        elif self.all_messages:
            self.emit(sighting)


def _work(
    path: Path, start: int, end: int, channel: Any, tcp_buffer: int, earlier: bool, later: bool
) -> None:
    # Ctrl-C reaches the whole process group: the parent alone handles it (and ends us)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    runs = analyse_run(path, start, end, tcp_buffer=tcp_buffer, earlier=earlier, later=later)
    for message in runs:
        channel.send_bytes(message)
    channel.close()


def analyse_in_parallel(
    path: Path,
    cuts: list[int],
    emit: Callable[[Record], None],
    tally: ServerTally,
    emit_sighting: Callable[[Sighting], None] | None = None,
    on_run_done: Callable[[int], None] | None = None,
    tcp_buffer: int = TCP_BUFFER_BUDGET,
) -> tuple[Stats, str | None]:
    """Run one worker per run between ``cuts``; ``emit`` each merged record in order.

    ``tally`` holds the servers already reported (by other files): they are not again.
    With ``emit_sighting`` the records are handed over undecoded instead, marked
    ``first``; the callee then counts their figures in ``tally`` (see Analyzer.record).
    ``on_run_done`` hears the size in bytes of each run as it ends (progress).
    ``tcp_buffer`` is shared out between the workers, so all of them together hold no more
    TCP reassembly bytes than one process would.
    """
    if emit_sighting is None:
        emit_sighting = _decoding(emit, tally)
    runs = list(itertools.pairwise(cuts))
    context = multiprocessing.get_context("fork")
    channels: list[Any] = []
    processes = []
    merger = RunMerger([0] * len(runs), tally, emit_sighting)
    try:
        for index, (start, end) in enumerate(runs):
            receiver, sender = context.Pipe(duplex=False)
            share = max(tcp_buffer // len(runs), 1)
            earlier, later = index > 0, index < len(runs) - 1
            process = context.Process(
                target=_work,
                args=(path, start, end, sender, share, earlier, later),
                daemon=True,
            )
            process.start()
            sender.close()
            channels.append(receiver)
            processes.append(process)
        # Every pipe drained as data comes, by a thread each: a full pipe would stall its
        # worker while the merge works on an earlier message
        inbox: queue.Queue[tuple[int, bytes]] = queue.Queue(maxsize=INBOX)
        for index, channel in enumerate(channels):
            failure = f"{path}: a worker ended early (bytes {runs[index]})"
            threading.Thread(
                target=_drain, args=(channel, index, inbox, failure), daemon=True
            ).start()
        left = len(runs)
        while left:
            index, message = inbox.get()
            if merger.accept(index, message):
                left -= 1
                if on_run_done:
                    on_run_done(runs[index][1] - runs[index][0])
        stats, problems = merger.finish()
    finally:
        merger.close()
        for process in processes:
            process.join(timeout=0.5)
            if process.is_alive():
                process.kill()
                process.join()
    return stats, problems[0] if problems else None


def _drain(channel: Any, index: int, inbox: queue.Queue[tuple[int, bytes]], failure: str) -> None:
    """A worker's messages into ``inbox``, its final state last (``failure`` if it died
    without one)."""
    while True:
        try:
            message = channel.recv_bytes()
        except (EOFError, OSError):
            message = failed_run(failure)
        inbox.put((index, message))
        if message[:1] == _DONE:
            return


def _decoding(emit: Callable[[Record], None], tally: ServerTally) -> Callable[[Sighting], None]:
    def emit_sighting(sighting: Sighting) -> None:
        record = sighting.record()
        if sighting.first:
            tally.count(record)
        emit(record)

    return emit_sighting
