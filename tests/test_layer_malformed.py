"""Hostile and broken input: the layer never raises, never loops, keeps every byte and says
what is wrong (truncated, oversized, malformed attributes, the corpus fuzz seeds)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.config import conf
from scapy.utils import rdpcap

from stunscan import protocol as proto
from stunscan.layers import (
    STUN,
    ChannelData,
    STUNAttribute,
    STUNClassic,
    STUNStream,
    STUNTrailingBytes,
    STUNTruncated,
)

from corpus import CORPUS, fuzz_seeds, needs_corpus

HEADER = proto.REFERENCE_PROBE


def _message(body: bytes, length: int | None = None) -> bytes:
    declared = len(body) if length is None else length
    return HEADER[:2] + struct.pack("!H", declared) + HEADER[4:] + body


@pytest.mark.parametrize("size", range(1, 20))
def test_truncated_header_is_marked_and_kept(size: int) -> None:
    data = HEADER[:size]
    pkt = STUN(data)
    assert type(pkt) is STUNTruncated
    assert pkt.malformed
    assert f"{size} bytes" in pkt.malformed_reasons()[0]
    assert bytes(pkt) == data


def test_length_past_the_buffer() -> None:
    data = _message(bytes.fromhex("80220004616263ff"), length=0x0100)
    pkt = STUN(data)
    assert pkt.malformed_reasons() == ["length field says 256 bytes, 8 follow the header"]
    assert pkt.get_attribute("SOFTWARE").decoded == "abc\ufffd"
    assert bytes(pkt) == data


def test_attribute_length_ffff() -> None:
    data = _message(bytes.fromhex("0001ffff0001"), length=8)
    pkt = STUN(data)
    (attr,) = pkt.attributes
    assert type(attr) is STUNAttribute and attr.length == 0xFFFF
    assert pkt.malformed_reasons() == [
        "length field says 8 bytes, 6 follow the header",
        "MAPPED-ADDRESS declares 65535 bytes, 2 present",
    ]
    assert bytes(pkt) == data


@pytest.mark.parametrize(
    ("tlv", "reason"),
    [
        ("000900030004010000", "ERROR-CODE: error-code value of 3 bytes (at least 4)"),
        ("00200005000112340000000000", "XOR-MAPPED-ADDRESS: xor-address value of 5 bytes"),
        ("0001000800031234aabbccdd", "MAPPED-ADDRESS: address family 0x03 with 8 bytes"),
        ("8028000200000000", "FINGERPRINT: crc32 value of 2 bytes (expected 4)"),
        ("0008000400000000", "MESSAGE-INTEGRITY: hmac-sha1 value of 4 bytes (expected 20)"),
    ],
)
def test_known_attribute_with_wrong_size_falls_back_to_bytes(tlv: str, reason: str) -> None:
    body = bytes.fromhex(tlv)
    body += bytes(proto.padded(len(body)) - len(body))
    data = _message(body)
    pkt = STUN(data)
    assert type(pkt.attributes[0]) is STUNAttribute
    assert pkt.malformed_reasons()[0].startswith(reason)
    assert bytes(pkt) == data


def test_trailing_bytes_too_short_for_an_attribute() -> None:
    data = _message(bytes.fromhex("0025000000"), length=5)
    pkt = STUN(data)
    assert [type(a) for a in pkt.attributes] == [type(pkt.attributes[0]), STUNTrailingBytes]
    reasons = pkt.malformed_reasons()
    assert "length 5 is not a multiple of 4" in reasons
    assert "1 trailing bytes, too few for an attribute" in reasons
    assert bytes(pkt) == data


def test_bytes_after_the_message_in_a_datagram_are_reported() -> None:
    data = HEADER + b"\x00"
    pkt = STUN(data)
    assert pkt.malformed_reasons() == ["1 bytes follow the message"]
    assert bytes(pkt) == data


def test_oversized_message_with_16383_empty_attributes() -> None:
    body = bytes.fromhex("00250000") * 16383
    data = _message(body)
    assert len(data) == 20 + 65532
    pkt = STUN(data)
    assert len(pkt.attributes) == 16383
    assert not pkt.malformed
    assert bytes(pkt) == data


def test_not_stun_is_raw() -> None:
    for data in (
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x80" + bytes(30),
        b"\xff" * 4,
        b"\x00\x09" + bytes(30),
    ):
        pkt = STUN(data)
        assert isinstance(pkt, conf.raw_layer), data
        assert bytes(pkt) == data


def test_channel_data_whose_length_runs_past_is_not_channel_data() -> None:
    assert type(STUN(bytes.fromhex("40010010aabb"))) is conf.raw_layer
    cd = STUN(bytes.fromhex("40010002aabb0000"))
    assert type(cd) is ChannelData and cd.data == b"\xaa\xbb" and not cd.malformed


def _check_lossless(data: bytes) -> None:
    pkt = STUN(data)
    assert bytes(pkt) == data
    if hasattr(pkt, "malformed_reasons"):
        assert isinstance(pkt.malformed_reasons(), list)
    pkt.summary()
    stream = STUNStream(data)
    assert bytes(stream) == data


@needs_corpus
@pytest.mark.parametrize("seed", fuzz_seeds(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fuzz_seed_never_raises_and_loses_nothing(seed: Path) -> None:
    _check_lossless(seed.read_bytes())


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=200))  # STUN(b"") builds a new message
def test_arbitrary_bytes(data: bytes) -> None:
    _check_lossless(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 0x3FFF), st.integers(0, 0xFFFF), st.binary(max_size=300), st.booleans())
def test_arbitrary_bodies_behind_a_valid_header(msg_type, length, body, classic) -> None:  # type: ignore[no-untyped-def]
    cookie = bytes(range(4)) if classic else proto.MAGIC_COOKIE_BYTES
    data = struct.pack("!HH", msg_type, length) + cookie + bytes(12) + body
    pkt = STUN(data)
    assert bytes(pkt) == data
    if isinstance(pkt, STUN):
        assert isinstance(pkt.malformed_reasons(), list)
        if length != len(body) or length % 4:
            assert pkt.malformed
        assert not isinstance(pkt, STUNClassic) or classic


@needs_corpus
def test_zeek_attribute_length_ffff_capture() -> None:
    packets = rdpcap(str(CORPUS / "pcaps/zeek/stun-attribute-length-ffff.pcap"))
    response = packets[1][STUN]
    assert response.type_name == "Binding Success Response"
    assert response.malformed_reasons() == ["MAPPED-ADDRESS declares 65535 bytes, 8 present"]


@needs_corpus
def test_zeek_malformed_error_code_capture() -> None:
    packets = rdpcap(str(CORPUS / "pcaps/zeek/stun-malformed-error.pcap"))
    response = packets[1][STUN]
    assert response.type_name == "Binding Error Response"
    reasons = response.malformed_reasons()
    assert reasons[0] == "ERROR-CODE: error-code value of 3 bytes (at least 4)"
    assert len(reasons) >= 2  # everything after it is misaligned
    assert bytes(response) == bytes(packets[1]["UDP"].payload)
