"""The vectorised reader gives the generic reader's answer, to the byte: the same records
(CSV and JSON), counts, pairing tables and reading problem, on the corpus, on pcaps/, on
generated mixed traffic, on scan-shaped captures, on captures made odd on purpose
(truncated, corrupt, big-endian, nanosecond, VLAN tags, snapped frames, flipped bits,
shuffled and slow timestamps) and on batches built to trip the pairing of a run at once
(duplicate IDs, answers before requests, ageing mid-batch, answers from another address,
retransmissions, batch boundaries between request and answer); the record walk agrees with
a sequential walk when packet bytes imitate record headers; CSV rows straight from the
bytes agree with full records."""

from __future__ import annotations

import dataclasses
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscan import csvrow, roles
from stunscan import protocol as proto
from stunscan.capture import recordwalk
from stunscan.enrich.columns import Enrichment, Place, fill_line
from stunscan.pcap import analyzer as analysis
from stunscan.pcap import block, pairing
from stunscan.pcap import feed as fastpcap
from stunscan.pcap.analyzer import Analyzer
from stunscan.pcap.feed import PcapFeed, fast_enabled
from stunscan.pcap.parallel import analyse_in_parallel
from stunscan.pcap.sighting import Sighting, ip_text, row_fields
from stunscan.record import Record, csv_line, enrich_cells, safe_cell
from stunscan.tally import ServerTally

from corpus import PROJECT, corpus_pcaps, fuzz_seeds
from strategies import messages

sys.path.insert(0, str(PROJECT / "benchmarks"))
from mixed_capture import generate
from scan_capture import generate as generate_scan


def outcome(path: Path, *, fast: bool, all_messages: bool = False) -> dict[str, Any]:
    """Everything the report shows, read one way or the other, and the pairing tables a
    parallel run's merge reads (pending requests in order, unsolicited answers)."""
    analyzer = Analyzer(all_messages=all_messages, track_unsolicited=True)
    feed = PcapFeed(path, analyzer, fast=fast)
    records = [analyzer.record(s) for batch in feed for s in batch]
    tables = (
        list(analyzer.pending.items()),
        list(analyzer.pending_by_client.items()),
        list(analyzer.unsolicited or ()),
    )
    analyzer.finish()
    return {
        "tables": tables,
        "rows": [r.as_json() for r in records],
        "stats": dataclasses.asdict(analyzer.stats),
        "tally": (
            analyzer.tally.factors,
            dict(analyzer.tally.families),
            analyzer.tally.software.most_common(),
        ),
        "problem": feed.problem,
    }


def assert_same(path: Path) -> None:
    for all_messages in (False, True):
        fast = outcome(path, fast=True, all_messages=all_messages)
        generic = outcome(path, fast=False, all_messages=all_messages)
        assert fast == generic


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small segments, batches and chain spacing: every boundary is crossed often."""
    monkeypatch.setattr(fastpcap, "SEGMENT", 1 << 16)
    monkeypatch.setattr(fastpcap, "BATCH", 700)
    monkeypatch.setattr(recordwalk, "SPACING", 1024)


# -- captures ------------------------------------------------------------------------------


def _records(data: bytes) -> list[tuple[int, int, bytes, int]]:
    out, offset = [], 24
    while offset + 16 <= len(data):
        seconds, fraction, caplen, length = struct.unpack_from("<IIII", data, offset)
        out.append((seconds, fraction, data[offset + 16 : offset + 16 + caplen], length))
        offset += 16 + caplen
    return out


def _write(
    path: Path, header: bytes, records: list[tuple[int, int, bytes, int]], order: str = "<"
) -> Path:
    with path.open("wb") as out:
        out.write(header)
        for seconds, fraction, frame, length in records:
            out.write(struct.pack(order + "IIII", seconds, fraction, len(frame), length) + frame)
    return path


def _mutate(frame: bytes, rng: random.Random) -> bytes:
    b = bytearray(frame)
    r = rng.random()
    if r < 0.12 and len(b) > 20:
        return bytes(b[: rng.randrange(len(b))])  # snapped
    if r < 0.25:
        for _ in range(rng.randrange(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if r < 0.33:
        return bytes(b[:12]) + b"\x81\x00\x00\x05" + bytes(b[12:])  # VLAN tag
    if r < 0.38:
        return bytes(b) + bytes(rng.randrange(1, 30))  # Ethernet trailer
    if r < 0.48 and len(b) > 60:  # a bit flipped in the STUN header or first attribute
        b[rng.randrange(42, min(len(b), 90))] ^= 1 << rng.randrange(8)
        return bytes(b)
    if r < 0.52:
        return bytes(b[:12]) + b"\x08\x06" + bytes(28)  # ARP
    if r < 0.56 and len(b) > 21 and b[12:14] == b"\x08\x00":
        b[20] |= 0x20  # more fragments
        return bytes(b)
    if r < 0.62 and len(b) > 42:  # both ports off 3478: the heuristics decide
        struct.pack_into("!HH", b, 34, 5000 + rng.randrange(50), 5000 + rng.randrange(50))
        return bytes(b)
    if r < 0.64 and len(b) > 24 and b[12:14] == b"\x08\x00":
        b[23] = rng.choice((1, 58, 0, 47))  # ICMP and other protocols
        return bytes(b)
    return bytes(b)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fast") / "mixed.pcap"
    generate(path, 12_000, seed=11)
    return path


def odd_captures(mixed: Path, folder: Path) -> list[Path]:
    data = mixed.read_bytes()
    header, records = data[:24], _records(data)
    rng = random.Random(3)
    made = [
        _write(
            folder / "mutated.pcap",
            header,
            [(s, f, _mutate(fr, rng), n) for s, f, fr, n in records],
        ),
        _write(
            folder / "bigendian.pcap",
            b"\xa1\xb2\xc3\xd4" + struct.pack(">HHiIII", 2, 4, 0, 0, 65535, 1),
            records,
            ">",
        ),
        _write(
            folder / "nanosecond.pcap",
            b"\x4d\x3c\xb2\xa1" + header[4:],
            [(s, f * 1000 + 7, fr, n) for s, f, fr, n in records],
        ),
        _write(
            folder / "slow.pcap",
            header,
            [(s + i * 3, f, fr, n) for i, (s, f, fr, n) in enumerate(records)],
        ),
        _write(
            folder / "rawip.pcap",
            header[:20] + struct.pack("<I", 101),
            [(s, f, fr[14:], n) for s, f, fr, n in records],
        ),
    ]
    shuffled = records[:]
    for i in range(0, len(shuffled) - 8, 8):
        piece = shuffled[i : i + 8]
        rng.shuffle(piece)
        shuffled[i : i + 8] = piece
    made.append(_write(folder / "shuffled.pcap", header, shuffled + records[:2000]))
    (folder / "truncated.pcap").write_bytes(data[: len(data) * 2 // 3 + 5])
    cut = 24 + sum(16 + len(r[2]) for r in records[:3000])
    (folder / "truncated_header.pcap").write_bytes(data[: cut + 9])
    corrupt = bytearray(data)
    struct.pack_into("<I", corrupt, cut + 8, 5 << 20)
    (folder / "corrupt.pcap").write_bytes(bytes(corrupt))
    made += [folder / "truncated.pcap", folder / "truncated_header.pcap", folder / "corrupt.pcap"]
    return made


def test_mixed_traffic(mixed: Path, small_pieces: None) -> None:
    assert_same(mixed)


def test_mixed_traffic_default_sizes(mixed: Path) -> None:
    assert_same(mixed)


def test_odd_captures(mixed: Path, tmp_path: Path, small_pieces: None) -> None:
    for path in odd_captures(mixed, tmp_path):
        assert_same(path)


def test_damage_is_reported_as_by_the_generic_reader(mixed: Path, tmp_path: Path) -> None:
    paths = {p.name: p for p in odd_captures(mixed, tmp_path)}
    for name in ("truncated.pcap", "truncated_header.pcap", "corrupt.pcap"):
        problem = outcome(paths[name], fast=True)["problem"]
        assert problem and "after" in problem
        assert problem == outcome(paths[name], fast=False)["problem"]


@pytest.mark.parametrize(
    "path",
    [*sorted((PROJECT / "pcaps").glob("*.pcap*")), *corpus_pcaps()],
    ids=lambda p: p.name,
)
def test_project_and_corpus_captures(path: Path, small_pieces: None) -> None:
    assert_same(path)


def test_only_classic_ethernet_pcaps_take_the_fast_path(tmp_path: Path) -> None:
    ethernet = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    assert fast_enabled(ethernet)
    assert fast_enabled(b"\xa1\xb2\xc3\xd4" + struct.pack(">HHiIII", 2, 4, 0, 0, 65535, 1))
    assert not fast_enabled(ethernet[:20] + struct.pack("<I", 113))  # Linux cooked
    assert not fast_enabled(b"\x0a\x0d\x0d\x0a" + bytes(20))  # pcapng
    assert not fast_enabled(ethernet[:10])


def assert_bulk_line(sighting: Sighting) -> bool:
    """A line made a block at a time (stunscan.csvlines) is csvrow.line's; True if made."""
    if sighting.line is None:
        return False
    single = csvrow.line(sighting.data, sighting.time, ip_text(sighting.src),
                         sighting.sport, sighting.transport, sighting.request_size)  # fmt: skip
    assert single == sighting.line
    return True


@pytest.fixture
def bulk_lines_always(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(block, "BULK_LINES", 1)


@pytest.mark.parametrize("shape", ["mixed", "unpaired", "answered"])
def test_lines_made_in_bulk_are_made_one_at_a_time_too(
    shape: str, mixed: Path, tmp_path: Path, bulk_lines_always: None
) -> None:
    path = mixed
    if shape != "mixed":
        path = tmp_path / "scan.pcap"
        generate_scan(path, 9_000, shape)
    made = [assert_bulk_line(s) for batch in PcapFeed(path, Analyzer()) for s in batch]
    assert sum(made) > len(made) // 2


def test_parallel_runs_with_rows_from_bytes_match_one_reader(
    mixed: Path, bulk_lines_always: None
) -> None:
    analyzer = Analyzer()
    expected = [
        list(analyzer.record(s).row().values())
        for batch in PcapFeed(mixed, analyzer)
        for s in batch
    ]
    analyzer.finish()
    tally = ServerTally()
    rows: list[list[str]] = []

    made_in_bulk = 0

    def emit_sighting(sighting: Sighting) -> None:
        nonlocal made_in_bulk
        fields = row_fields(sighting)
        assert fields is not None
        rows.append(fields[0])
        tally.figures(*fields[1:])
        made_in_bulk += assert_bulk_line(sighting)

    size = mixed.stat().st_size
    data = mixed.read_bytes()
    cuts = [24]
    offset = 24
    while offset < size:  # a cut at the record nearest each third
        if len(cuts) < 3 and offset >= size * len(cuts) // 3:
            cuts.append(offset)
        offset += 16 + struct.unpack_from("<I", data, offset + 8)[0]
    cuts.append(size)
    stats, problem = analyse_in_parallel(mixed, cuts, lambda r: None, tally, emit_sighting)
    assert problem is None
    assert rows == expected
    assert made_in_bulk > 0  # (the merge's lines, made a block at a time, were checked)
    assert sorted(tally.factors) == sorted(analyzer.tally.factors)
    assert dataclasses.asdict(stats) == dataclasses.asdict(analyzer.stats)


# -- pairing a run at a time ---------------------------------------------------------------


@pytest.fixture
def small_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables small enough that requests age out by their number inside a batch."""
    monkeypatch.setattr(analysis, "MAX_PENDING", 40)


def test_scan_shaped_captures(tmp_path: Path, small_pieces: None) -> None:
    for shape in ("unpaired", "answered"):
        path = tmp_path / f"{shape}.pcap"
        expected = generate_scan(path, 9_000, shape)
        assert_same(path)
        found = outcome(path, fast=True)
        stats = found["stats"]
        assert stats["requests"] == expected.requests
        assert stats["responses"] == expected.responses
        assert stats["paired"] == expected.paired
        assert stats["unsolicited"] == expected.unsolicited
        assert len(found["rows"]) == expected.servers
        moved = sum(bool(r["answered_from_another_address"]) for r in found["rows"]
                    if "answered_from_another_address" in r)  # fmt: skip
        assert (moved > 0) == (shape == "answered")
    assert stats["paired"] == stats["responses"]  # (the answered shape: every answer pairs)


def test_scan_shaped_capture_with_small_tables(
    tmp_path: Path, small_pieces: None, small_tables: None
) -> None:
    for shape in ("unpaired", "answered"):
        path = tmp_path / f"{shape}.pcap"
        generate_scan(path, 6_000, shape)
        assert_same(path)


SCANNER = bytes([198, 19, 0, 1])


def _server(n: int) -> bytes:
    return bytes([198, 18, n >> 8 & 0xFF, n & 0xFF])


def _udp(source: bytes, sport: int, destination: bytes, dport: int, payload: bytes) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, 17, 0,
                     source, destination)  # fmt: skip
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + udp + payload


def _stun(msg_type: int, tid: bytes, body: bytes = b"") -> bytes:
    return struct.pack("!HHI", msg_type, len(body), 0x2112A442) + tid + body


SOFTWARE = b"\x80\x22\x00\x04test"


def exchange_records(seed: int, count: int) -> list[tuple[int, int, bytes, int]]:
    """Requests and answers meant to trip a run's pairing: few IDs, clients and servers (so
    IDs repeat: retransmissions, duplicate answers, one ID to two servers), answers before
    their requests, answers from port 3479 (another address), TCP-free, and time that
    sometimes jumps past the pending timeout or runs backwards."""
    rng = random.Random(seed)
    tids = [rng.randbytes(12) for _ in range(rng.choice((6, 40, 400)))]
    when = 1_700_000_000.0
    records = []
    asked: list[tuple[bytes, int, int]] = []
    for _ in range(count):
        roll = rng.random()
        when += rng.choice((0.001, 0.001, 0.01, 0.5)) if rng.random() < 0.98 else 61.0
        if rng.random() < 0.01:
            when -= 70.0
        if roll < 0.45 or not asked:
            tid, server, port = rng.choice(tids), rng.randrange(8), 4000 + rng.randrange(3)
            asked.append((tid, server, port))
            frame = _udp(SCANNER, port, _server(server), 3478, _stun(0x0001, tid))
        else:
            tid, server, port = rng.choice(asked[-30:]) if rng.random() < 0.9 else (
                rng.choice(tids), rng.randrange(8), 4000 + rng.randrange(3))  # fmt: skip
            sport = 3479 if rng.random() < 0.15 else 3478
            source = _server(server if rng.random() < 0.9 else rng.randrange(8))
            frame = _udp(source, sport, SCANNER, port, _stun(0x0101, tid, SOFTWARE))
        seconds = int(when)
        records.append((seconds, int((when - seconds) * 1e6), frame, len(frame)))
    return records


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


@pytest.mark.parametrize("seed", range(12))
def test_exchanges_built_to_trip_the_pairing(
    seed: int, tmp_path: Path, small_pieces: None, small_tables: None
) -> None:
    path = _write(tmp_path / "exchanges.pcap", PCAP_HEADER, exchange_records(seed, 3_000))
    assert_same(path)


def _answered_in_turn(count: int, lag: int, first: int = 0) -> list[tuple[int, int, bytes, int]]:
    """``count`` requests with their own IDs, each answered ``lag`` requests later."""
    records, frames = [], []
    for n in range(first, first + count + lag):
        if n < first + count:
            tid = n.to_bytes(12, "big")
            frames.append(_udp(SCANNER, 5000, _server(n), 3478, _stun(0x0001, tid)))
        if n - lag >= first:
            tid = (n - lag).to_bytes(12, "big")
            answer = _stun(0x0101, tid, SOFTWARE)
            frames.append(_udp(_server(n - lag), 3478, SCANNER, 5000, answer))
    for number, frame in enumerate(frames):
        records.append((1_700_000_000 + number // 1000, number % 1000, frame, len(frame)))
    return records


@pytest.mark.parametrize(
    "name",
    [
        "duplicates",
        "answer_first",
        "ageing",
        "moved",
        "boundary",
        "retransmitted",
        "timeout",
        "same_id_two_servers",
    ],
)
def test_each_trap_alone(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One trap at a time in an otherwise plain run (so the run would be paired at once
    but for it), and the run it spoils gone through the per-message code."""
    monkeypatch.setattr(fastpcap, "BATCH", 400)
    records = _answered_in_turn(600, 25)
    at = 300
    seconds, fraction, request, _ = next(r for r in records[at:] if r[2][42:44] == b"\0\1")
    answer = next(r for r in records[at:] if r[2][42:44] == b"\1\1" and r[2][50:62] ==
                  request[50:62])  # fmt: skip
    if name == "duplicates":
        records.insert(at + 3, answer)
    elif name == "answer_first":
        records.remove(answer)
        records.insert(records.index((seconds, fraction, request, len(request))), answer)
    elif name == "ageing":  # room for the 25 awaiting answers, not for 10 more
        monkeypatch.setattr(analysis, "MAX_PENDING", 30)
        unanswered = [_udp(SCANNER, 5001, _server(9), 3478, _stun(1, bytes([n]) * 12))
                      for n in range(10)]  # fmt: skip
        records[at:at] = [(seconds, fraction, f, len(f)) for f in unanswered]
    elif name == "moved":
        frame = bytearray(answer[2])
        frame[34:36] = (3479).to_bytes(2, "big")
        records[records.index(answer)] = (*answer[:2], bytes(frame), len(frame))
    elif name == "boundary":
        monkeypatch.setattr(fastpcap, "BATCH", 61)
    elif name == "retransmitted":
        records.insert(at + 5, (seconds, fraction, request, len(request)))
    elif name == "same_id_two_servers":  # in runs of their own (split by generic frames)
        monkeypatch.setattr(fastpcap, "BATCH", 16384)
        tid = request[50:62]
        again = _udp(SCANNER, 5000, _server(9999), 3478, _stun(0x0001, tid))
        answer = _udp(_server(9999), 3478, SCANNER, 5000, _stun(0x0101, tid, SOFTWARE))
        other = _udp(_server(7777), 3479, SCANNER, 5000, _stun(0x0101, tid, SOFTWARE))
        options = bytearray(_udp(SCANNER, 9, _server(1), 9, bytes(8)))
        options[14] = 0x46  # IPv4 with options: the generic code's
        options[16:18] = (len(options) - 10).to_bytes(2, "big")
        split = bytes(options[:34] + bytes(4) + options[34:])
        place = records.index((seconds, fraction, request, len(request))) + 1
        for offset, frame in ((0, split), (1, again), (2, answer), (40, split), (41, other)):
            records.insert(place + offset, (seconds, fraction, frame, len(frame)))
    else:
        records[at:] = [(s + 100, f, fr, n) for s, f, fr, n in records[at:]]
    path = _write(tmp_path / f"{name}.pcap", PCAP_HEADER, records)
    assert_same(path)
    planned = []
    real_plan = pairing.Pairer.plan

    def counting_plan(self: pairing.Pairer, *args: Any) -> pairing.Plan | None:
        made = real_plan(self, *args)
        planned.append(made is not None)
        return made

    monkeypatch.setattr(pairing.Pairer, "plan", counting_plan)
    outcome(path, fast=True)
    assert any(planned)  # the plain runs are paired at once
    if name in ("duplicates", "retransmitted", "timeout", "ageing", "same_id_two_servers"):
        assert not all(planned)  # and the run with the trap the careful way...
    if name in ("answer_first", "boundary", "moved"):
        assert all(planned)  # ...unless it is decided at once too


def test_captures_read_in_turn_share_the_tables(tmp_path: Path) -> None:
    """One analyser reads the files of a run in turn: requests left pending by the first
    age out by time when the second starts 200 s later, and their answers there are
    unsolicited."""

    def frames(first: int, count: int, answered: range) -> list[bytes]:
        out = [_udp(SCANNER, 5000, _server(n), 3478, _stun(1, n.to_bytes(12, "big")))
               for n in range(first, first + count)]  # fmt: skip
        for n in answered:
            answer = _stun(0x0101, n.to_bytes(12, "big"), SOFTWARE)
            out.insert(2 * (n % count) + 1, _udp(_server(n), 3478, SCANNER, 5000, answer))
        return out

    files = []
    for number, (start, made) in enumerate(
        ((1_700_000_000, frames(0, 40, range(0))), (1_700_000_200, frames(100, 40, range(40))))
    ):
        records = [(start, i, frame, len(frame)) for i, frame in enumerate(made)]
        files.append(_write(tmp_path / f"{number}.pcap", PCAP_HEADER, records))
    results = []
    for fast in (True, False):
        analyzer = Analyzer(track_unsolicited=True)
        rows = [
            analyzer.record(s).as_json()
            for path in files
            for batch in PcapFeed(path, analyzer, fast=fast)
            for s in batch
        ]
        results.append((rows, dataclasses.asdict(analyzer.stats), list(analyzer.pending)))
    assert results[0] == results[1]
    assert results[0][1]["unanswered"] == 40 and results[0][1]["unsolicited"] == 40


# -- the record walk ------------------------------------------------------------------------


def sequential_walk(buffer: bytes, size: int, limit: int) -> tuple[list[int], int, int]:
    offsets, at = [], 0
    while at < limit:
        if at + 16 > size:
            return offsets, at, recordwalk.INCOMPLETE
        caplen = struct.unpack_from("<I", buffer, at + 8)[0]
        if caplen > recordwalk.MAX_RECORD:
            return offsets, at, recordwalk.CORRUPT
        if at + 16 + caplen > size:
            return offsets, at, recordwalk.INCOMPLETE
        offsets.append(at)
        at += 16 + caplen
    return offsets, at, recordwalk.REACHED_LIMIT


def decoy_records(seed: int, count: int) -> bytes:
    """Records whose packets carry copies of record headers (theirs and their neighbours'),
    so that guessed chain starts often fall inside a packet."""
    rng = random.Random(seed)
    out = bytearray()
    for n in range(count):
        length = rng.choice((0, 3, 16, 40, 41, 90, 300, rng.randrange(600)))
        header = struct.pack(
            "<IIII", 1_700_000_000 + n // 50, rng.randrange(1_000_000), length, length
        )
        body = bytearray(rng.randbytes(length))
        for _ in range(length // 24):
            fake = rng.randrange(length)
            decoy = struct.pack("<IIII", 1_700_000_000, 5, rng.randrange(64), 64)
            body[fake : fake + 16] = decoy[: max(0, min(16, length - fake))]
        out += header + body
    return bytes(out)


@pytest.mark.parametrize("seed", range(6))
def test_walk_matches_a_sequential_walk(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recordwalk, "SPACING", 256 + 97 * seed)
    data = decoy_records(seed, 3000)
    rng = random.Random(seed)
    walker = recordwalk.RecordWalker("<", 1e-6)
    for size, limit in (
        (len(data), len(data)),
        (len(data) - 7, 1 << 40),
        (len(data), len(data) // 2 + rng.randrange(99)),
    ):
        buffer = np.zeros(len(data) + 64, np.uint8)
        buffer[: len(data)] = np.frombuffer(data, np.uint8)
        walk = walker.walk(buffer, size, limit)
        offsets, stop, reason = sequential_walk(data, size, limit)
        assert walk.offsets.tolist() == offsets
        assert (walk.stop, walk.reason) == (stop, reason)


def test_walk_stops_at_a_corrupt_record() -> None:
    data = bytearray(decoy_records(9, 500))
    offsets, _, _ = sequential_walk(bytes(data), len(data), len(data))
    struct.pack_into("<I", data, offsets[321] + 8, recordwalk.MAX_RECORD + 1)
    buffer = np.zeros(len(data) + 64, np.uint8)
    buffer[: len(data)] = np.frombuffer(bytes(data), np.uint8)
    walk = recordwalk.RecordWalker("<", 1e-6).walk(buffer, len(data), len(data))
    assert walk.offsets.tolist() == offsets[:321]
    assert (walk.stop, walk.reason) == (offsets[321], recordwalk.CORRUPT)


# -- CSV rows from the bytes ------------------------------------------------------------------


def assert_row_agrees(data: bytes, request_size: int | None = None, transport: str = "udp") -> None:
    sighting = Sighting(
        1_700_000_000.25,
        transport,
        data,
        b"\xc0\x00\x02\x01",
        3478,
        b"\xc6\x33\x64\x02",
        40000,
        request_size,
    )
    fields = row_fields(sighting)
    assert_line_agrees(data, request_size, transport)
    message_record = None
    try:
        message_record = sighting.record()
    except AssertionError:  # not STUN at all: neither path makes a row
        assert fields is None
        return
    if fields is None:  # not STUN, or a request (its row names the other end: decoded)
        assert (
            message_record.message.kind not in ("stun", "classic")
            or message_record.direction != "response"
        )
        return
    cells, amplification, family, software = fields
    record: Record = message_record
    assert cells == list(record.row().values())
    assert [safe_cell(c) for c in cells] == [safe_cell(c) for c in record.row().values()]
    assert (amplification, family, software) == (
        record.amplification,
        record.family,
        record.software(),
    )


HOSTILE_PLACE = Enrichment(
    Place("=X", 'Region, "quoted"', "+City", 64500, "AS, Org"), "-host,name", "ptr", 7, "@sector"
)


def assert_line_agrees(data: bytes, request_size: int | None, transport: str) -> None:
    """csvrow.line is csv_line of csvrow.cells, enrichment filled in or not, and says
    whether the message is signed as roles.is_signed does."""
    reference = csvrow.cells(data, 1_700_000_000.25, "192.0.2.1", 3478, transport, request_size)
    made = csvrow.line(data, 1_700_000_000.25, "192.0.2.1", 3478, transport, request_size)
    if made is None:  # not STUN, or a vendor's method: left to cells
        assert reference is None or not proto.known_method((data[0] << 8) | data[1])
        return
    assert reference is not None
    cells, amplification, software = reference
    assert made.text == csv_line(cells)
    assert (made.amplification, made.software) == (amplification, software)
    assert made.signed == roles.is_signed(data)
    for enrichment in (Enrichment(), HOSTILE_PLACE):
        filled = fill_line(made.text, enrichment.csv_text())
        assert filled == csv_line(enrich_cells(list(cells), enrichment))


@pytest.mark.parametrize(
    "software", [b"a,b", b'say "hi"', b"=cmd()", b" -1", b"\xef\xbc\x9dX", b"\x00\n"]
)
def test_lines_from_bytes_with_hostile_software(software: bytes) -> None:
    body = b"\x80\x22" + len(software).to_bytes(2, "big") + software
    body += bytes(-len(body) % 4)
    message = b"\x01\x01" + len(body).to_bytes(2, "big") + b"\x21\x12\xa4\x42" + b"T" * 12 + body
    assert_line_agrees(message, None, "udp")
    made = csvrow.line(message, 0.0, "192.0.2.1", 3478, "udp", None)
    assert made is not None and made.text.count("\n") == 1


@pytest.mark.parametrize("seed", fuzz_seeds(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rows_from_bytes_on_fuzz_seeds(seed: Path) -> None:
    data = seed.read_bytes()
    for start in range(0, min(len(data), 64)):
        assert_row_agrees(data[start:], 20, "tcp")


@settings(max_examples=400, deadline=None)
@given(messages(), st.one_of(st.none(), st.integers(1, 600)))
def test_rows_from_bytes_on_generated_messages(data: bytes, request_size: int | None) -> None:
    assert_row_agrees(data, request_size)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=20, max_size=120))
def test_rows_from_bytes_on_arbitrary_bodies(body: bytes) -> None:
    for header in (
        b"\x01\x01" + len(body).to_bytes(2, "big") + b"\x21\x12\xa4\x42",
        b"\x01\x01\x00\x14",
    ):
        assert_row_agrees(header + body)


@pytest.mark.parametrize("code", [0x0001, 0x0020, 0x8020, 0x8022, 0x8028])
def test_rows_from_bytes_on_short_and_misshapen_values(code: int) -> None:
    """The four attributes a row reads, each cut short by the message's end or of the
    wrong length or family, after a first copy or alone (the first copy counts)."""
    shapes = [
        (d, p, f) for d in (0, 1, 4, 7, 8, 12, 20, 24) for p in (0, 1, 4, 8, 20) for f in (1, 2, 3)
    ]
    for declared, present, family in shapes:
        value = bytes((0, family, 0x9A, 0x0B)) + bytes(range(7, 23))
        attribute = code.to_bytes(2, "big") + declared.to_bytes(2, "big") + value[:present]
        _check_attribute_shapes(code, attribute)


def _check_attribute_shapes(code: int, attribute: bytes) -> None:
    for before in (
        b"",
        b"\x80\x22\x00\x03abc\x00",
        code.to_bytes(2, "big") + b"\x00\x04\x00\x01\x02\x03",
    ):
        body = before + attribute
        for cookie in (b"\x21\x12\xa4\x42", b"\x00\x00\x00\x01"):
            message = b"\x01\x01" + len(body).to_bytes(2, "big") + cookie + b"T" * 12 + body
            assert_row_agrees(message)
            assert_row_agrees(message[:-1])


def test_pcap_command_does_not_import_scapy(mixed: Path) -> None:
    code = (
        "import sys\n"
        "from stunscan.cli import main\n"
        f"sys.argv = ['stunscan', 'pcap', {str(mixed)!r}, '--csv', '/dev/null']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "assert 'scapy' not in sys.modules, 'scapy imported'\n"
        "assert 'numpy' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
