"""Several cores, one answer: a pcap analysed in runs by forked workers gives the same
records and counts as one reader, also when a cut separates a request from its response."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from stunscan.capture.files import CaptureReader, pcap_boundaries
from stunscan.pcap.analyzer import Analyzer
from stunscan.pcap.parallel import analyse_in_parallel, plan
from stunscan.record import Record
from stunscan.tally import ServerTally

from corpus import PROJECT

sys.path.insert(0, str(PROJECT / "benchmarks"))
from mixed_capture import generate


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parallel") / "mixed.pcap"
    generate(path, 20_000, seed=7)
    return path


def record_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    offsets, offset = [], 24
    while offset < len(data):
        offsets.append(offset)
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    return offsets


def sequential(path: Path) -> tuple[list[dict[str, str]], Analyzer]:
    analyzer = Analyzer()
    rows = [r.row() for frame in CaptureReader(path) for r in analyzer.feed(frame)]
    analyzer.finish()
    return rows, analyzer


def parallel(path: Path, cuts: list[int]) -> tuple[list[dict[str, str]], object, ServerTally]:
    records: list[Record] = []
    tally = ServerTally()
    stats, problem = analyse_in_parallel(path, cuts, records.append, tally)
    assert problem is None
    return [r.row() for r in records], stats, tally


def test_boundaries_fall_on_records(capture: Path) -> None:
    cuts = pcap_boundaries(capture, 3)
    assert cuts is not None and len(cuts) == 4
    offsets = set(record_offsets(capture))
    assert all(cut in offsets for cut in cuts[:-1]) and cuts[-1] == capture.stat().st_size
    assert plan(capture, 2) is None  # too small to be worth it by default
    assert plan(capture, 2, min_bytes=0) is not None


@pytest.mark.parametrize("workers", [2, 3])
def test_same_records_and_counts_as_one_reader(capture: Path, workers: int) -> None:
    cuts = pcap_boundaries(capture, workers)
    assert cuts
    rows, stats, tally = parallel(capture, cuts)
    expected_rows, analyzer = sequential(capture)
    assert sorted(map(str, rows)) == sorted(map(str, expected_rows))
    assert stats == analyzer.stats
    assert sorted(tally.factors) == sorted(analyzer.tally.factors)


def test_a_cut_between_request_and_response_is_mended(capture: Path) -> None:
    offsets = record_offsets(capture)
    data = capture.read_bytes()
    # the first Binding request (UDP, IPv4, to 3478) after the middle of the file
    middle = next(
        i for i in range(len(offsets) // 2, len(offsets))
        if data[offsets[i] + 16 + 36 : offsets[i] + 16 + 38] == b"\x0d\x96"
        and data[offsets[i] + 16 + 42 : offsets[i] + 16 + 44] == b"\x00\x01"
    )  # fmt: skip
    cut = offsets[middle + 1]
    rows, stats, _ = parallel(capture, [24, cut, capture.stat().st_size])
    expected_rows, analyzer = sequential(capture)
    assert stats == analyzer.stats
    assert sorted(map(str, rows)) == sorted(map(str, expected_rows))


def test_a_record_header_imitated_by_packet_bytes_is_not_a_cut(tmp_path: Path) -> None:
    """Zeroed packets, and inside the one where the middle falls a plausible header (eight
    years later, a length that lands on a true record): the cut is the true record after."""
    from stunscan.pcap.parallel import boundaries

    when, size = 1_700_000_000, 100
    for count in range(200, 300):  # the middle inside a packet, with room for a header
        offsets = [24 + i * (16 + size) for i in range(count)]
        target = (offsets[-1] + 16 + size) // 2
        holder = max(i for i, offset in enumerate(offsets) if offset + 16 <= target)
        fake = max(target, offsets[holder] + 16)
        if fake + 16 <= offsets[holder] + 16 + size:
            break
    landing = offsets[holder + 2]
    data = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for _ in offsets:
        data += struct.pack("<IIII", when, 0, size, size) + bytes(size)
        when += 1
    caplen = landing - fake - 16
    data[fake : fake + 16] = struct.pack("<IIII", when + 8 * 365 * 86400, 0, caplen, caplen + 9)
    path = tmp_path / "imitation.pcap"
    path.write_bytes(data)
    cuts = boundaries(path, 2)
    assert cuts is not None and cuts[1] in offsets and cuts[1] >= landing
