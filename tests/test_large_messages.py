"""Messages of thousands of attributes (the corpus's attrs-16383.bin and others made like it).

The layer dissects an attribute only when it is read (``layers/attribute_list.py``): what
it says without reading them all (the count, the malformations, FINGERPRINT and
MESSAGE-INTEGRITY, the summary, the JSON) must be what it says once every one is read, and
what the fast codec says; ``decode`` and ``explain`` show the first ones and say how many
more there are. Time and memory: benchmarks/decode_large.py, never here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from mutations import mutate, seed_messages
from scapy.layers.inet import IP, TCP
from scapy.packet import Raw
from scapy.utils import wrpcap
from typer.testing import CliRunner

from stunscan import codec
from stunscan import protocol as proto
from stunscan.cli import app
from stunscan.jsonshape import layer_attribute_json
from stunscan.layers import STUN, STUNClassic, make_attribute
from stunscan.layers.attribute_list import AttributeList
from stunscan.render.messages import (
    MAX_EXPLAINED_ATTRIBUTES,
    MAX_SHOWN_ATTRIBUTES,
    attributes_json,
    not_shown,
)

from corpus import CORPUS, needs_corpus
from strategies import messages

runner = CliRunner()
KEY = proto.short_term_key("VOkJxbRl1RmTxUk/WvJxBt")


def _dissected(message: STUN) -> int:
    return sum(1 for _ in message.attributes.dissected())


def _big(count: int, *, integrity: bool = False, seed: int = 0) -> bytes:
    """A Binding success of ``count`` attributes of several kinds, an XOR-MAPPED-ADDRESS
    near the end, then MESSAGE-INTEGRITY (if asked) and FINGERPRINT over it all."""
    rng = random.Random(seed)
    makers = [
        lambda i: make_attribute("DONT-FRAGMENT"),
        lambda i: make_attribute("SOFTWARE", value=f"v{i}"),
        lambda i: make_attribute("LIFETIME", value=600 + i),
        lambda i: make_attribute("ERROR-CODE", value=(400 + i % 100, "x" * (i % 5))),
        lambda i: make_attribute("MAPPED-ADDRESS", value=(f"192.0.2.{i % 250}", i)),
        lambda i: make_attribute("UNKNOWN-ATTRIBUTES", value=[0x0001, 0x8022, i % 0xFFFF]),
    ]
    attrs = [rng.choice(makers)(i) for i in range(count)]
    attrs.append(make_attribute("XOR-MAPPED-ADDRESS", value=("203.0.113.7", 40000)))
    if integrity:
        attrs.append(make_attribute("MESSAGE-INTEGRITY", key=KEY))
    attrs.append(make_attribute("FINGERPRINT"))
    data = bytes(STUN(type="Binding Success Response", attributes=attrs))
    assert len(data) <= proto.HEADER_SIZE + proto.MAX_MESSAGE_LENGTH
    return data


def _assert_lazy_says_what_eager_says(data: bytes) -> None:
    """Everything asked of a fresh message equals the answer once every attribute is read,
    and the fast codec's."""
    fresh, full = STUN(data), STUN(data)
    if not isinstance(getattr(fresh, "attributes", None), AttributeList):
        return  # not STUN: Raw, ChannelData or a cut-short header
    list(full.attributes)  # read them all
    assert len(fresh.attributes) == len(full.attributes), data.hex()
    assert fresh.malformed_reasons() == full.malformed_reasons(), data.hex()
    assert fresh.summary() == full.summary(), data.hex()
    assert fresh.fingerprint_ok() == full.fingerprint_ok(), data.hex()
    assert fresh.message_bytes() == full.message_bytes(), data.hex()
    for code in {getattr(a, "type", None) for a in full.attributes} - {None}:
        assert fresh.get_attribute(code) == full.get_attribute(code), (code, data.hex())
    decoded = codec.decode(data)
    assert decoded is not None
    assert fresh.malformed_reasons() == decoded.malformed
    assert STUN(data).attributes.codes() == [getattr(a, "type", None) for a in full.attributes], (
        data.hex()
    )
    assert attributes_json(STUN(data)) == [
        layer_attribute_json(a) for a in full.attributes if hasattr(a, "attribute_name")
    ], data.hex()


@needs_corpus
def test_the_corpus_message_is_counted_and_checked_without_dissecting_each() -> None:
    data = (CORPUS / "damaged" / "attrs-16383.bin").read_bytes()
    message = STUN(data)
    assert len(message.attributes) == 16_383
    assert message.malformed_reasons() == []
    assert message.fingerprint_ok() is None
    assert message.get_attribute("FINGERPRINT") is None
    assert message.summary() == "STUN Binding Success Response"
    assert message.message_bytes() == data and bytes(message) == data
    assert message.attributes.codes() == [0x001A] * 16_383
    assert _dissected(message) == 0  # none of that needed a packet per attribute
    shown = message.attributes[:MAX_SHOWN_ATTRIBUTES]
    assert [a.attribute_name for a in shown] == ["DONT-FRAGMENT"] * MAX_SHOWN_ATTRIBUTES
    assert _dissected(message) == MAX_SHOWN_ATTRIBUTES
    assert message.attributes[-1].type == 0x001A and _dissected(message) == 201


@pytest.mark.parametrize("count", [MAX_SHOWN_ATTRIBUTES - 1, MAX_SHOWN_ATTRIBUTES + 1, 5000])
def test_fingerprint_and_integrity_cover_the_whole_big_message(count: int) -> None:
    data = _big(count, integrity=True)
    message = STUN(data)
    assert message.fingerprint_ok() is True
    assert message.integrity_ok(KEY) is True
    assert message.integrity_ok(proto.short_term_key("wrong")) is False
    assert message.get_attribute("XOR-MAPPED-ADDRESS").address == "203.0.113.7"
    decoded = codec.decode(data)
    assert decoded is not None and decoded.fingerprint is True
    # One byte changed in the middle (a LIFETIME's or a SOFTWARE's value, say): both fail.
    middle = proto.HEADER_SIZE + (len(data) - proto.HEADER_SIZE) // 2
    broken = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
    assert STUN(broken).fingerprint_ok() is False
    assert STUN(broken).integrity_ok(KEY) is False
    assert codec.decode(broken).fingerprint is False  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(3))
def test_a_fresh_big_message_says_what_the_dissected_one_and_the_codec_say(seed: int) -> None:
    data = _big(300 + 1500 * seed, seed=seed)
    _assert_lazy_says_what_eager_says(data)
    # Malformed: the last attribute cut short, the length not a multiple of 4.
    cut = data[:-3]
    cut = cut[:2] + (len(cut) - proto.HEADER_SIZE).to_bytes(2, "big") + cut[4:]
    assert STUN(cut).malformed_reasons()
    _assert_lazy_says_what_eager_says(cut)
    # A method the registry does not know: every attribute opaque.
    vendor = b"\x0f\xf1" + data[2:]
    assert STUN(vendor).attributes[0].attribute_name.startswith("0x")
    _assert_lazy_says_what_eager_says(vendor)
    # Three bytes too few for one more attribute header at the end.
    trailing = data + b"\x00\x01\x02"
    trailing = trailing[:2] + (len(trailing) - 20).to_bytes(2, "big") + trailing[4:]
    _assert_lazy_says_what_eager_says(trailing)


@settings(max_examples=150, deadline=None)
@given(messages())
def test_fresh_and_dissected_agree_on_generated_messages(data: bytes) -> None:
    _assert_lazy_says_what_eager_says(data)


def test_fresh_and_dissected_agree_on_damaged_messages() -> None:
    rng = random.Random(14)
    seeds = seed_messages()
    for _ in range(400):
        _assert_lazy_says_what_eager_says(mutate(rng.choice(seeds), rng, rng.choice(seeds)))


def test_an_attribute_read_late_is_the_one_read_at_once() -> None:
    """RFC 3489 stund XORs 0x8020 with the 128-bit ID: an attribute first read after the
    ID was changed decodes with the ID the message came with, as it would have been read
    at dissection, and the message builds the same either way."""
    body = [make_attribute("DONT-FRAGMENT") for _ in range(300)]
    body.append(make_attribute(0x8020, address="198.51.100.4", port=3478))
    built = STUNClassic(type=0x0101, transaction_id=bytes(range(16)), attributes=body)
    data = bytes(built)
    late, early = STUN(data), STUN(data)
    assert isinstance(late, STUNClassic)
    list(early.attributes)
    late.transaction_id = early.transaction_id = bytes(16)
    assert late.attributes[-1].address == early.attributes[-1].address == "198.51.100.4"
    assert late.attributes[-1].port == 3478
    assert bytes(late) == bytes(early)


def test_changes_to_a_big_message_are_built_as_scapy_builds_them() -> None:
    data = _big(3000, seed=7)
    message = STUN(data)
    assert bytes(message.copy()) == data and _dissected(message.copy()) == 0
    message.attributes[5].type = 0x8022  # SOFTWARE now, whatever it was
    assert bytes(message)[proto.HEADER_SIZE :] != data[proto.HEADER_SIZE :]
    assert STUN(bytes(message)).attributes[5].type == 0x8022
    assert STUN(data) == STUN(data) and STUN(data).attributes == STUN(data).attributes
    grown = STUN(data)
    grown.length = None
    grown.attributes.append(make_attribute("SOFTWARE", value="one more"))
    assert len(STUN(bytes(grown)).attributes) == len(STUN(data).attributes) + 1
    assert STUN(bytes(grown)).malformed_reasons() == []


@pytest.mark.parametrize("extra", [1, 2, 500])
def test_decode_says_how_many_attributes_are_not_shown(extra: int) -> None:
    count = MAX_SHOWN_ATTRIBUTES + extra
    body = b"\x00\x1a\x00\x00" * count
    data = bytes.fromhex("0101") + len(body).to_bytes(2, "big") + proto.MAGIC_COOKIE_BYTES
    data += bytes(12) + body
    result = runner.invoke(app, ["decode", data.hex()], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert not_shown(extra) in result.stdout
    assert result.stdout.count("DONT-FRAGMENT") == MAX_SHOWN_ATTRIBUTES
    result = runner.invoke(app, ["explain", data.hex()], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert not_shown(count - MAX_EXPLAINED_ATTRIBUTES) in result.stdout
    (row,) = [
        json.loads(line)
        for line in runner.invoke(app, ["decode", "--json", "-", data.hex()]).stdout.splitlines()
    ]
    assert len(row["attributes"]) == count
    assert not_shown(1) == "1 more attribute not shown"


def _capture(data: bytes, path: Path) -> None:
    """``data`` over one TCP connection to port 3478 in 32 KiB segments (pcap, raw IP)."""
    packets = [
        IP(src="192.0.2.1", dst="192.0.2.9")
        / TCP(sport=40000, dport=3478, seq=1000 + offset, flags="PA")
        / Raw(data[offset : offset + (1 << 15)])
        for offset in range(0, len(data), 1 << 15)
    ]
    wrpcap(str(path), packets)


@needs_corpus
def test_a_capture_of_several_big_messages_shows_each(tmp_path: Path) -> None:
    """The issue's capture holds 12 (benchmarks/decode_large.py); three show the same."""
    data = (CORPUS / "damaged" / "attrs-16383.bin").read_bytes()
    path = tmp_path / "attrs-x3.pcap"
    _capture(data * 3, path)
    result = runner.invoke(app, ["decode", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.stdout.count("16,183 more attributes not shown") == 3
    assert result.stdout.count("frame ") == 3
    result = runner.invoke(app, ["explain", str(path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.stdout.count("16,333 more attributes not shown") == 3
    rows = runner.invoke(app, ["decode", "--json", "-", str(path)]).stdout.splitlines()
    assert len(rows) == 3
    for line in rows:
        row = json.loads(line)
        assert row["hex"] == data.hex() and row["malformed"] == []
        assert len(row["attributes"]) == 16_383


@settings(max_examples=150, deadline=None)
@given(messages())
def test_the_walk_for_some_codes_yields_those_of_the_whole_walk(data: bytes) -> None:
    """``iter_attributes(codes=...)`` (FINGERPRINT, MESSAGE-INTEGRITY checks) skips the
    others and yields exactly the attributes of those codes the whole walk yields."""
    for wanted in ((proto.FINGERPRINT,), proto.INTEGRITY_ATTRIBUTES, (-1, 0x0020)):
        everything = [a for a in proto.iter_attributes(data) if a.code in wanted]
        assert list(proto.iter_attributes(data, codes=wanted)) == everything
