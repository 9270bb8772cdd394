"""The sniffer's batch judgement against its frame-by-frame definition, on the same frames.

``judge_batch`` (numpy over a receive ring's slots, ``stunscan.scan.triage``) must count
every frame as ``dissect`` counts it and keep the same answers in the same order: valid
ones, duplicates, forged and spoofed IDs, moved ports, echoed requests, errors, frames cut
at every length, lying UDP lengths, IPv4 options, ICMP, other ethertypes, the fuzz
corpus's messages carrying a valid ID, and generated ones, for each kind of probe (keyed
12-byte ID, classic 16-byte ID, the report's zero ID). Then an answer's row from its bytes
(``Answer.cells``) must be the row of its full record, and the CSV writer's whole-line fast
path must write what ``csv.writer`` writes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import ipaddress
import os
import struct
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscan import protocol as proto
from stunscan.record import COLUMNS, CSVWriter, safe_cell
from stunscan.scan.answer import Answer, Row
from stunscan.scan.rxring import Frames
from stunscan.scan.sniffer import COUNTERS, ReceiveStats, Validator, dissect, judge_batch
from stunscan.scan.targets import TargetSpace, parse_target
from stunscan.scan.triage import ROW
from stunscan.scan.txid import TransactionKey

from corpus import fuzz_seeds

SCANNER4, SCANNER6 = "192.0.2.2", "2001:db8:ffff::2"
SERVERS4 = [f"203.0.113.{n}" for n in range(1, 9)]
SERVERS6 = ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
OUTSIDE4, OUTSIDE6 = "198.51.100.7", "2001:db8:9::1"
PORTS = (3478, 3479)
SLOT, MAC = 2048, 66
"""Slot size and frame offset of a TPACKET_V2 ring on Ethernet (the kernel's layout)."""
SUCCESS = proto.message_type(0x001, proto.MessageClass.SUCCESS_RESPONSE)
ERROR = proto.message_type(0x001, proto.MessageClass.ERROR_RESPONSE)
REQUEST = proto.message_type(0x001, proto.MessageClass.REQUEST)
INDICATION = proto.message_type(0x001, proto.MessageClass.INDICATION)


def _packed(address: str) -> bytes:
    return ipaddress.ip_address(address).packed


def udp_frame(
    source: str,
    payload: bytes,
    sport: int = 3478,
    *,
    udp_length: int | None = None,
    options: bytes = b"",
    protocol: int = 17,
) -> bytes:
    """Ethernet + IPv4/IPv6 + UDP to the scanner (checksums left zero: nobody checks)."""
    length = 8 + len(payload) if udp_length is None else udp_length
    udp = struct.pack("!HHHH", sport, 40000, length, 0) + payload
    ether = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    if ":" in source:
        header = struct.pack("!IHBB", 6 << 28, len(udp), protocol, 64)
        return ether + b"\x86\xdd" + header + _packed(source) + _packed(SCANNER6) + udp
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH", 0x40 | ihl, 0, ihl * 4 + len(udp), 0, 0x4000, 64, protocol, 0)
    return ether + b"\x08\x00" + header + _packed(source) + _packed(SCANNER4) + options + udp


def icmp_frame(v6: bool, kind: int, code: int) -> bytes:
    ether = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"
    body = bytes([kind, code, 0, 0]) + bytes(28)
    if v6:
        header = struct.pack("!IHBB", 6 << 28, len(body), 58, 64)
        return ether + b"\x86\xdd" + header + _packed(SERVERS6[0]) + _packed(SCANNER6) + body
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), 0, 0, 64, 1, 0)
    return ether + b"\x08\x00" + header + _packed(SERVERS4[0]) + _packed(SCANNER4) + body


HOSTILE = (
    " =1+1",
    "  -2",
    "\u3000@SUM(A1)",
    "\uff1d1+1",  # full-width = + - @
    "\uff0b1",
    "\uff0d1",
    "\uff20SUM",
    "\ufe661",  # small =
    "\u2212" + "1",  # minus sign
    "a\u061cb\u2028c\u2029d\u202ee\u2066f",  # bidi controls and line separators
)
"""SOFTWARE values a spreadsheet or a terminal would act on: both paths must defuse them."""


def message(msg_type: int, ident: bytes, classic: bool = False, extra: bytes = b"") -> bytes:
    """A response (or other class) with XOR-MAPPED-ADDRESS and SOFTWARE, ``extra`` bytes
    after it in the datagram."""
    if classic:  # a 16-byte ID: no cookie
        attributes = [(proto.MAPPED_ADDRESS, proto.encode_address(SCANNER4, 40000))]
        return proto.encode_message(msg_type, ident, attributes) + extra
    key = proto.MAGIC_COOKIE_BYTES + ident
    attributes = [
        (proto.XOR_MAPPED_ADDRESS, proto.encode_xor_address(SCANNER4, 40000, key)),
        (proto.SOFTWARE, b'triage, "test" =1'),
    ]
    return proto.encode_message(msg_type, ident, attributes) + extra


class Scan:
    """One kind of probe: its key, validator and the IDs it would send."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        spans = [parse_target("203.0.113.0/28"), parse_target("2001:db8::/124")]
        self.space = TargetSpace.build(spans, PORTS, [])
        self.key = TransactionKey(size=16 if mode == "classic" else 12)
        self.keyed = mode != "shadowserver"

    def validator(self) -> Validator:
        clients = {4: f"{SCANNER4}:40000", 6: f"[{SCANNER6}]:40000"}
        return Validator(self.space, self.key, self.keyed, 20, clients)

    def ident(self, address: str, port: int = 3478, probe: int = 0) -> bytes:
        if not self.keyed:
            return bytes(12)
        return self.key.transaction_id(_packed(address), port, probe)

    def answer(self, address: str, port: int = 3478, **kwargs: object) -> bytes:
        ident = self.ident(address, port, int(kwargs.pop("probe", 0)))  # type: ignore[call-overload]
        msg_type = int(kwargs.pop("msg_type", SUCCESS))  # type: ignore[call-overload]
        extra = bytes(kwargs.pop("extra", b""))  # type: ignore[call-overload]
        return message(msg_type, ident, self.mode == "classic", extra)


def mixed_frames(scan: Scan) -> list[bytes]:
    """Every case the sniffer distinguishes, several times over, in a shuffled order."""
    frames: list[bytes] = []
    for address in SERVERS4 + SERVERS6:
        frames.append(udp_frame(address, scan.answer(address)))
        frames.append(udp_frame(address, scan.answer(address, probe=1)))  # same server again
        frames.append(udp_frame(address, scan.answer(address, 3479), sport=3479))
        frames.append(udp_frame(address, scan.answer(address, 3479), sport=5000))  # moved
        frames.append(udp_frame(address, scan.answer(address, 3478), sport=3479))  # moved
        frames.append(udp_frame(address, scan.answer(address, 3479), sport=3478))  # moved
        frames.append(udp_frame(address, scan.answer(address, msg_type=ERROR), sport=3478))
        frames.append(udp_frame(address, scan.answer(address, msg_type=REQUEST)))  # echoed
        frames.append(udp_frame(address, scan.answer(address, msg_type=INDICATION)))
        frames.append(udp_frame(address, scan.answer(address, extra=b"\0\0\0\0tail")))
        forged = message(SUCCESS, os.urandom(16 if scan.mode == "classic" else 12))
        frames.append(udp_frame(address, forged))
    good = udp_frame(SERVERS4[2], scan.answer(SERVERS4[2]))
    frames += [good[:n] for n in range(len(good))]  # every truncation
    frames.append(good[:38] + b"\xff\xff" + good[40:])  # UDP length past the frame
    frames.append(good[:38] + b"\x00\x03" + good[40:])  # shorter than its own header
    frames.append(good[:38] + b"\x00\x08" + good[40:])  # no payload
    answer = scan.answer(SERVERS4[3])
    frames.append(udp_frame(SERVERS4[3], answer, options=b"\x01\x01\x01\x00"))  # IPv4 options
    frames.append(udp_frame(SERVERS4[4], answer))  # another server's ID: spoofed
    frames.append(udp_frame(OUTSIDE4, scan.answer(OUTSIDE4)))  # not a target
    frames.append(udp_frame(OUTSIDE6, scan.answer(OUTSIDE6)))
    frames.append(udp_frame(SERVERS4[5], scan.answer(SERVERS4[5]), protocol=6))
    frames.append(udp_frame(SERVERS6[1], scan.answer(SERVERS6[1]), protocol=6))
    frames.append(udp_frame(SERVERS4[6], b"\x40\x00\x00\x04data"))  # ChannelData
    frames.append(udp_frame(SERVERS4[6], b"\x80" + answer[1:]))  # top bits set
    frames.append(udp_frame(SERVERS4[6], answer[:4] + b"\0\0\0\0" + answer[8:]))  # no cookie
    frames.append(udp_frame(SERVERS4[6], answer[:19]))  # short of a header
    frames.append(b"\x02" * 12 + b"\x08\x06" + bytes(28))  # ARP
    frames.append(b"\x02" * 12 + b"\x81\x00" + good[12:])  # a VLAN tag
    for v6 in (False, True):
        frames += [icmp_frame(v6, 1 if v6 else 3, code) for code in range(5)]
        frames.append(icmp_frame(v6, 128 if v6 else 8, 0))
        frames.append(icmp_frame(v6, 1 if v6 else 3, 0)[: 14 + (40 if v6 else 20) + 1])
    for seed in fuzz_seeds()[:300]:  # hostile messages, carrying a valid ID or not
        data = seed.read_bytes()[:1400]
        frames.append(udp_frame(SERVERS4[7], data))
        if len(data) >= 20:
            ident = scan.ident(SERVERS4[7])
            if scan.mode == "classic":
                frames.append(udp_frame(SERVERS4[7], data[:4] + ident + data[20:]))
            else:
                frames.append(udp_frame(SERVERS4[7], data[:4] + proto.MAGIC_COOKIE_BYTES + ident
                                        + data[20:]))  # fmt: skip
    order = np.random.default_rng(7).permutation(len(frames))
    return [frames[i] for i in order]


def ring_of(frames: list[bytes]) -> tuple[bytes, np.ndarray, Frames]:
    """The frames laid out as a receive ring lays them out: one per slot, at MAC."""
    buffer = bytearray(SLOT * len(frames) + ROW)
    for index, frame in enumerate(frames):
        buffer[index * SLOT + MAC : index * SLOT + MAC + len(frame)] = frame
    memory = bytes(buffer)
    slots = np.arange(len(frames))
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    times = 1_800_000_000.0 + slots * 0.001
    return memory, np.frombuffer(memory, np.uint8), Frames(slots, slots * SLOT + MAC, lengths,
                                                           lengths, times)  # fmt: skip


def one_by_one(scan: Scan, frames: list[bytes], times: np.ndarray) -> tuple[list[int], list]:
    validator, stats = scan.validator(), ReceiveStats()
    answers = [
        dissect(memoryview(frame), validator, stats, float(when))
        for frame, when in zip(frames, times, strict=True)
    ]
    return stats.as_list(), [a for a in answers if a is not None]


def in_batches(scan: Scan, frames: list[bytes], size: int) -> tuple[list[int], list[Answer]]:
    memory, buffer, ring = ring_of(frames)
    validator, stats = scan.validator(), ReceiveStats()
    triage = validator.triage()
    answers: list[Answer] = []
    for first in range(0, len(frames), size):
        part = slice(first, first + size)
        batch = Frames(ring.slots[part], ring.starts[part], ring.captured[part],
                       ring.wire[part], ring.times[part])  # fmt: skip
        answers += judge_batch(memory, buffer, batch, validator, triage, stats)
    return stats.as_list(), answers


@pytest.mark.parametrize("mode", ["binding", "classic", "shadowserver"])
@pytest.mark.parametrize("size", [1, 7, 4096])
def test_batches_count_and_keep_what_frame_by_frame_does(mode: str, size: int) -> None:
    scan = Scan(mode)
    frames = mixed_frames(scan)
    _memory, _buffer, ring = ring_of(frames)
    expected_stats, expected = one_by_one(scan, frames, ring.times)
    stats, answers = in_batches(scan, frames, size)
    assert stats == expected_stats
    assert answers == expected
    # the mix exercises every bucket the sniffer has (the zero-ID probe has no moved port)
    named = dict(zip(COUNTERS, stats, strict=True))
    for bucket in ("valid", "duplicates", "bad_id", "not_stun", "echoed"):
        assert named[bucket] > 0, bucket
    assert named["icmp_port_unreachable"] == 2 and named["icmp_other_unreachable"] == 8
    assert named["moved"] > 0 or mode == "shadowserver"
    assert named["received"] == len(frames)
    assert len({(a.source, a.port) for a in answers}) == len(answers) == named["valid"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(SERVERS4 + SERVERS6 + [OUTSIDE4]),
            st.sampled_from([3478, 3479, 40, 65535]),
            st.integers(0, 0xFFFF),  # message type
            st.binary(max_size=64),  # attributes, any bytes
            st.booleans(),  # a valid ID or a random one
            st.integers(-8, 8),  # the UDP length's error
        ),
        min_size=1,
        max_size=40,
    )
)
def test_generated_frames_are_judged_alike(cases: list[tuple]) -> None:  # type: ignore[type-arg]
    scan = Scan("binding")
    frames = []
    for address, sport, msg_type, body, valid, error in cases:
        ident = scan.ident(address, 3478) if valid else bytes(12)
        payload = struct.pack("!HH", msg_type, len(body)) + proto.MAGIC_COOKIE_BYTES + ident + body
        frames.append(udp_frame(address, payload, sport, udp_length=8 + len(payload) + error))
    _memory, _buffer, ring = ring_of(frames)
    assert in_batches(scan, frames, 5) == one_by_one(scan, frames, ring.times)


@pytest.mark.parametrize("mode", ["binding", "classic", "shadowserver"])
def test_an_answers_row_from_its_bytes_is_its_records_row(mode: str) -> None:
    scan = Scan(mode)
    _stats, answers = in_batches(scan, mixed_frames(scan), 4096)
    assert len(answers) > len(SERVERS4)
    for answer in answers:
        cells, amplification, software = answer.cells()
        record = answer.record()
        assert cells == list(record.row().values())
        assert (amplification, software) == (record.amplification, record.software())
        assert record.response_size == len(answer.payload)  # the whole UDP payload


def _one_at_a_time(answer: Answer) -> Row:
    """The row Answer.line makes when no batch made one."""
    return dataclasses.replace(answer, row=None).line()


@pytest.mark.parametrize("mode", ["binding", "classic", "shadowserver"])
def test_a_batch_makes_the_rows_one_answer_at_a_time_makes(mode: str) -> None:
    scan = Scan(mode)
    _stats, answers = in_batches(scan, mixed_frames(scan), 4096)
    batch_made = [answer for answer in answers if answer.row is not None]
    assert len(batch_made) > len(answers) // 2  # the batch path did most of them
    for answer in batch_made:
        assert answer.row == _one_at_a_time(answer)


_ATTRIBUTE = st.one_of(
    st.tuples(
        st.sampled_from(
            [proto.MAPPED_ADDRESS, proto.XOR_MAPPED_ADDRESS, proto.XOR_MAPPED_ADDRESS_LEGACY]
        ),
        st.one_of(
            st.tuples(st.ip_addresses(), st.integers(0, 0xFFFF)).map(
                lambda a: proto.encode_address(str(a[0]), a[1])
            ),
            st.binary(max_size=24),  # wrong lengths, families
        ),
    ),
    st.tuples(
        st.just(proto.SOFTWARE),
        st.one_of(
            st.text(max_size=30).map(lambda t: t.encode()),
            st.sampled_from(
                [b"=cmd|' /C calc'!A0", b'a "quoted", b', b"-1", b"\x1b[31m"]
                + [text.encode() for text in HOSTILE]
            ),
            st.binary(max_size=30),
        ),
    ),
    st.tuples(st.just(proto.FINGERPRINT), st.binary(min_size=0, max_size=6)),
    st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=40)),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(_ATTRIBUTE, max_size=30),
            st.integers(-12, 12),  # the header length's error: cut or overlong messages
            st.binary(max_size=8),  # bytes after the message
            st.booleans(),  # from IPv6
        ),
        min_size=1,
        max_size=12,
    )
)
def test_generated_answers_get_the_same_row_either_way(cases: list[tuple]) -> None:  # type: ignore[type-arg]
    scan = Scan("binding")
    frames = []
    for number, (attributes, error, tail, v6) in enumerate(cases):
        address = (SERVERS6 if v6 else SERVERS4)[number % 3]
        ident = scan.ident(address)
        message = proto.encode_message(SUCCESS, ident, [])
        body = b"".join(
            struct.pack("!HH", code, len(value)) + value + bytes(-len(value) % 4)
            for code, value in attributes
        )
        length = max(0, len(body) + error) & 0xFFFC
        frames.append(udp_frame(address, struct.pack("!HH", SUCCESS, length) + message[4:]
                                + body + tail))  # fmt: skip
    _stats, answers = in_batches(scan, frames, 64)
    for answer in answers:
        expected = _one_at_a_time(answer)
        if answer.row is not None:
            assert answer.row == expected
        assert answer.line() == expected


def _csv_module_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([safe_cell(c) for c in cells])
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=12),
            st.sampled_from(
                ["", "=1+2", "-5", "+x", "@SUM", "a,b", 'say "hi"', "\t", "x\ry", *HOSTILE]
            ),
            st.from_regex(r"[0-9a-f.:]{0,20}", fullmatch=True),
        ),
        min_size=len(COLUMNS),
        max_size=len(COLUMNS),
    )
)
def test_the_csv_fast_line_is_what_csv_writer_writes(cells: list[str]) -> None:
    out = io.StringIO()
    writer = CSVWriter(out)
    header = out.getvalue()
    writer.write_cells(cells)
    assert out.getvalue()[len(header) :] == _csv_module_line(cells)


def _line_of(write: Callable[[CSVWriter], None]) -> str:
    out = io.StringIO()
    writer = CSVWriter(out)
    start = len(out.getvalue())
    write(writer)
    return out.getvalue()[start:]


def test_a_hostile_software_cell_is_defused_on_either_path() -> None:
    plain = ["x"] * len(COLUMNS)
    assert _line_of(lambda w: w.write_cells(plain)) == ",".join(plain) + "\n"
    hostile = [*plain[:24], "=HYPERLINK(1,2)", *plain[25:]]
    assert "'=HYPERLINK(1,2)" in _line_of(lambda w: w.write_cells(hostile))


@pytest.mark.parametrize("text", HOSTILE)
def test_formulas_behind_spaces_and_look_alikes_are_defused(text: str) -> None:
    cells = ["x"] * len(COLUMNS)
    cells[24] = text
    (row,) = csv.reader(io.StringIO(_line_of(lambda w: w.write_cells(cells))))
    formula = text.lstrip()[0] in "=+-@\uff1d\uff0b\uff0d\uff20\ufe66\u2212"
    assert row[24].startswith("'") == formula, row[24]
    assert not any(ch in row[24] for ch in "\u061c\u2028\u2029\u202e\u2066"), row[24]


@pytest.mark.parametrize("mode", ["binding"])
def test_a_batch_defuses_hostile_software_as_one_answer_at_a_time_does(mode: str) -> None:
    scan = Scan(mode)
    frames = []
    for number, text in enumerate(HOSTILE * 3):
        address = SERVERS4[number % 3]
        key = proto.MAGIC_COOKIE_BYTES + scan.ident(address)
        attributes = [
            (proto.XOR_MAPPED_ADDRESS, proto.encode_xor_address(SCANNER4, 40000, key)),
            (proto.SOFTWARE, text.encode()),
        ]
        frames.append(udp_frame(address, proto.encode_message(SUCCESS, key[4:], attributes)))
    _stats, answers = in_batches(scan, frames, 64)
    assert answers and all(answer.row is not None for answer in answers)
    for answer in answers:
        assert answer.row == _one_at_a_time(answer)
        (row,) = csv.reader(io.StringIO(answer.row.line))
        software = row[24]
        assert software.startswith("'") or "\\u" in software, software
