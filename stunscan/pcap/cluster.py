"""``stunscan pcap --cluster``: capture archives analysed by the workers of a Dask cluster.

Every file becomes one or more runs (a pcap larger than ``chunk_bytes`` is cut at record
boundaries, as the local pool cuts it); every run is one Dask task, the ordinary analyser
over those records (``stunscan.pcap.parallel.analyse_run``), returning the run's messages
still pickled. Here they are merged as the local pool merges them
(``stunscan.pcap.parallel.RunMerger``), in file order then run order, so the rows, their
order and the summary are those of one process; the runs of a file already merged stream
out while later ones are still being analysed. Earlier runs go first (task priority).

Where the files are: a local path must name the same file on every worker (a shared file
system, mounted at the same place); it is sent as an absolute path. A URL (``s3://...``,
``gcs://...``, ``file://...``: anything fsspec opens, with its package installed on the
client and the workers) is read through fsspec: the client reads a megabyte around each
cut to find the record boundaries, and each task copies its byte range (the pcap header
and its records; a whole file when it is not cut) to the worker's temporary folder and
analyses that, since the capture readers read local files.

The workers need stunscan installed (the same version as the client): the tasks are its
functions.
"""

from __future__ import annotations

import itertools
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stunscan.capture.files import is_capture
from stunscan.pcap.analyzer import Stats
from stunscan.pcap.parallel import RunMerger, analyse_run, boundaries, failed_run
from stunscan.pcap.progress import RunProgress
from stunscan.pcap.sighting import Sighting
from stunscan.tally import ServerTally

CHUNK_BYTES = 256 << 20
"""Capture bytes per task by default: enough to amortise a task, little enough to balance
the work over the workers and to bound what a task's result holds."""
CONNECT_TIMEOUT = 10
"""Seconds to reach the scheduler before saying it cannot be reached."""
STAGE_BLOCK = 8 << 20
"""Bytes copied at a time when a task stages a remote run."""
_WINDOW = 2 << 20
"""What is read after each cut target (see _remote_boundaries)."""


class ClusterError(Exception):
    """The cluster cannot be used (one line for the user, exit 2)."""


def is_url(name: str) -> bool:
    return "://" in name


@dataclass(frozen=True, slots=True)
class Run:
    """One task: the records of ``location`` between two offsets (None: the whole file)."""

    file: int
    location: str
    shown_as: str
    start: int | None
    end: int | None
    size: int


def remote_files(url: str) -> list[str]:
    """The capture files a URL names: itself, or those under it when it is a folder
    (recognised by magic number, in name order). OSError when it names nothing."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        raise FileNotFoundError(url)
    if not fs.isdir(root):
        return [url]
    protocol = url.split("://", 1)[0]
    found = []
    for name in sorted(fs.find(root)):
        with fs.open(name, "rb") as handle:
            if is_capture(handle.read(4)):
                found.append(name if "://" in name else f"{protocol}://{name}")
    return found


def plan_runs(
    files: Sequence[Path | str],
    chunk_bytes: int = CHUNK_BYTES,
    *,
    cut: bool = True,
    warn: Callable[[str], None] | None = None,
) -> list[Run]:
    """The runs of every file, in order. A file that cannot even be sized is left out
    (``warn`` hears why)."""
    runs: list[Run] = []
    for index, item in enumerate(files):
        try:
            if isinstance(item, Path):
                location, shown_as = str(item.absolute()), str(item)
                size = item.stat().st_size
                parts = -(-size // chunk_bytes)
                cuts = boundaries(item, parts) if cut and parts > 1 else None
            else:
                location = shown_as = item
                size, cuts = _remote_plan(item, chunk_bytes, cut)
        except OSError as exc:
            if warn:
                warn(f"cannot read {item}: {exc.strerror or exc}")
            continue
        if not cuts:
            runs.append(Run(index, location, shown_as, None, None, size))
            continue
        for start, end in itertools.pairwise(cuts):
            runs.append(Run(index, location, shown_as, start, end, end - start))
    return runs


def _remote_plan(url: str, chunk_bytes: int, cut: bool) -> tuple[int, list[int] | None]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    size = int(fs.size(path))
    parts = -(-size // chunk_bytes)
    if not cut or parts < 2:
        return size, None
    return size, _remote_boundaries(fs, path, size, parts)


def _remote_boundaries(fs: Any, path: str, size: int, parts: int) -> list[int] | None:
    """parallel.boundaries on a remote file, reading only what it reads: the file header
    and a window after each cut target (pcap_boundaries finds its cut within the first
    quarter of it), written into a sparse local file of the same size."""
    with tempfile.TemporaryDirectory(prefix="stunscan-") as folder:
        local = Path(folder) / "sparse.pcap"
        with fs.open(path, "rb") as remote, local.open("wb") as sparse:
            sparse.truncate(size)
            sparse.write(remote.read(40))
            for part in range(1, parts):
                target = size * part // parts
                remote.seek(target)
                sparse.seek(target)
                sparse.write(remote.read(_WINDOW))
        return boundaries(local, parts)


def analyse_task(
    location: str, start: int | None, end: int | None, all_messages: bool, shown_as: str
) -> list[bytes]:
    """One run, on a worker: its messages (see analyse_run), pickled as they will be
    merged, so that neither Dask nor the client unpickles them on the way."""
    if not is_url(location):
        return list(
            analyse_run(Path(location), start, end, all_messages=all_messages, shown_as=shown_as)
        )
    with tempfile.TemporaryDirectory(prefix="stunscan-") as folder:
        local = Path(folder) / "run.pcap"
        try:
            _stage(location, start, end, local)
        except OSError as exc:
            return [failed_run(f"cannot read {shown_as}: {exc.strerror or exc}")]
        return list(analyse_run(local, all_messages=all_messages, shown_as=shown_as))


def _stage(url: str, start: int | None, end: int | None, local: Path) -> None:
    """Copy a run of a remote file into a local one: the whole file, or the pcap header
    (24 bytes) then the records between ``start`` and ``end``."""
    import fsspec

    with fsspec.open(url, "rb") as remote, local.open("wb") as out:
        if start is not None:
            out.write(remote.read(24))
            remote.seek(start)
        left = None if end is None or start is None else end - start
        while left is None or left > 0:
            block = remote.read(STAGE_BLOCK if left is None else min(left, STAGE_BLOCK))
            if not block:
                break
            out.write(block)
            if left is not None:
                left -= len(block)


def connect(address: str) -> Any:
    """A client of the scheduler at ``address`` (tcp://HOST:PORT), or ClusterError."""
    from distributed import Client
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    try:
        get_backend(parse_address(address)[0])  # before a Client half made complains
    except ValueError as exc:
        raise ClusterError(f"not a Dask scheduler address: {address} ({exc})") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def analyse_on_cluster(
    client: Any,
    runs: Sequence[Run],
    tally: ServerTally,
    emit: Callable[[Sighting], None],
    *,
    all_messages: bool = False,
    progress: RunProgress | None = None,
) -> tuple[Stats, list[str]]:
    """Every run as a task on the cluster (``client``, see connect); their sightings
    merged in order to ``emit`` (marked ``first`` for the tally, as parallel.RunMerger
    does). The merged counts and the problems of files that stopped early."""
    from distributed import as_completed

    merger = RunMerger([run.file for run in runs], tally, emit, all_messages=all_messages)
    left_in_file: dict[int, int] = {}
    for run in runs:
        left_in_file[run.file] = left_in_file.get(run.file, 0) + 1
    token = uuid.uuid4().hex[:12]
    futures: list[Any] = []
    try:
        futures = [
            client.submit(
                analyse_task,
                run.location,
                run.start,
                run.end,
                all_messages,
                run.shown_as,
                key=f"stunscan-pcap-{token}-{index}",
                priority=len(runs) - index,
            )
            for index, run in enumerate(runs)
        ]
        index_of = {future.key: index for index, future in enumerate(futures)}
        for future in as_completed(futures, loop=client.loop):
            index = index_of[future.key]
            run = runs[index]
            try:
                messages = future.result()
            except Exception as exc:  # a worker lost, stunscan missing on a worker...
                where = "" if run.start is None else f" (bytes {run.start}-{run.end})"
                messages = [failed_run(f"{run.shown_as}{where}: the cluster failed: {exc}")]
            future.release()
            futures[index] = None
            for message in messages:
                merger.accept(index, message)
            del messages
            if progress:
                progress.advance(run.size)
                left_in_file[run.file] -= 1
                if not left_in_file[run.file]:
                    progress.file_done()
        return merger.finish()
    finally:
        merger.close()
        left = [future for future in futures if future is not None]
        if left:
            client.cancel(left)
