"""Two decoders, one answer: the fast codec and the Scapy layer agree field by field on
every STUN message of the corpus, of pcaps/, and of generated and arbitrary input."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import TCP, UDP
from scapy.packet import Packet
from scapy.utils import rdpcap

from stunscan import codec
from stunscan import protocol as proto
from stunscan.layers import (
    STUN,
    ChannelData,
    RFC4571Frame,
    STUNClassic,
    STUNStream,
    STUNTrailingBytes,
    STUNTruncated,
)

from corpus import PROJECT, corpus_pcaps, fuzz_seeds, rfc_vectors
from strategies import messages

_KINDS = {
    STUN: proto.STUN_MESSAGE,
    STUNClassic: proto.CLASSIC_MESSAGE,
    ChannelData: proto.CHANNEL_DATA,
    STUNTruncated: proto.TRUNCATED,
}


def scapy_view(pkt: Packet) -> dict[str, Any] | None:
    """What the Scapy layer says, in the codec's terms."""
    kind = _KINDS.get(type(pkt))
    if kind is None:
        return None
    if kind == proto.TRUNCATED:
        return {"kind": kind, "malformed": pkt.malformed_reasons()}
    if kind == proto.CHANNEL_DATA:
        return {"kind": kind, "channel": pkt.channel, "length": pkt.length, "data": bytes(pkt.data)}
    # Asked before any attribute is read: the layer answers these from the bytes (its
    # attributes are dissected when first read), and they must still agree.
    malformed, fingerprint = pkt.malformed_reasons(), pkt.fingerprint_ok()
    attributes = []
    for attr in pkt.attributes:
        if isinstance(attr, STUNTrailingBytes):
            raw = bytes(attr.data)
            attributes.append((-1, len(raw), raw, b"", raw, attr.problem()))
            continue
        attributes.append(
            (
                attr.type,
                attr.length,
                attr.value_bytes(),
                bytes(attr.padding),
                attr.decoded,
                attr.problem(),
            )
        )
    return {
        "kind": kind,
        "type": pkt.type,
        "length": pkt.length,
        "cookie": getattr(pkt, "magic_cookie", None),
        "transaction_id": bytes(pkt.transaction_id),
        "attributes": attributes,
        "malformed": malformed,
        "fingerprint": fingerprint,
    }


def codec_view(msg: codec.Message | None) -> dict[str, Any] | None:
    if msg is None:
        return None
    if msg.kind == proto.TRUNCATED:
        return {"kind": msg.kind, "malformed": msg.malformed}
    if msg.kind == proto.CHANNEL_DATA:
        return {"kind": msg.kind, "channel": msg.channel, "length": msg.length, "data": msg.data}
    return {
        "kind": msg.kind,
        "type": msg.msg_type,
        "length": msg.length,
        "cookie": msg.cookie,
        "transaction_id": msg.transaction_id,
        "attributes": [
            (a.code, a.length, a.value, a.padding, a.decoded, a.problem) for a in msg.attributes
        ],
        "malformed": msg.malformed,
        "fingerprint": msg.fingerprint,
    }


def assert_agree_on_datagram(data: bytes) -> None:
    assert codec_view(codec.decode(data)) == scapy_view(STUN(data)), data.hex()


def assert_agree_on_stream(data: bytes) -> None:
    """The codec stops before a message that continues in a later segment; Scapy shows it
    (malformed): they agree on every complete message, and differ by at most that one."""
    ours, _ = codec.decode_stream(data)
    theirs = []
    for message in STUNStream(data).messages:
        view = scapy_view(message.message if isinstance(message, RFC4571Frame) else message)
        if view is not None:
            theirs.append(view)
    complete = [codec_view(m) for m in ours]
    assert complete == theirs[: len(complete)], data.hex()
    assert len(theirs) - len(complete) <= 1


def _payloads(path: Path) -> list[tuple[str, bytes]]:
    found = []
    for packet in rdpcap(str(path)):
        if packet.haslayer(UDP):
            found.append(("udp", bytes(packet[UDP].payload)))
        elif packet.haslayer(TCP) and len(packet[TCP].payload):
            found.append(("tcp", bytes(packet[TCP].payload)))
    return found


def _capture_ids(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.name}" for p in paths]


CAPTURES = corpus_pcaps() + sorted((PROJECT / "pcaps").glob("*.pcap*"))


@pytest.mark.parametrize("path", CAPTURES, ids=_capture_ids(CAPTURES))
def test_agree_on_every_payload_of_the_captures(path: Path) -> None:
    payloads = _payloads(path)
    assert payloads
    stun_seen = 0
    for transport, data in payloads:
        if transport == "udp" and data:
            assert_agree_on_datagram(data)
            stun_seen += codec.decode(data) is not None
        elif transport == "tcp":
            assert_agree_on_stream(data)
            stun_seen += len(codec.decode_stream(data)[0])
    assert stun_seen


@pytest.mark.parametrize("vector", rfc_vectors(), ids=[v["name"] for v in rfc_vectors()])
def test_agree_on_rfc_vectors(vector: dict[str, Any]) -> None:
    assert_agree_on_datagram(bytes.fromhex(vector["hex"]))


@pytest.mark.parametrize("seed", fuzz_seeds(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_agree_on_fuzz_seeds(seed: Path) -> None:
    data = seed.read_bytes()
    if data:
        assert_agree_on_datagram(data)
        assert_agree_on_stream(data)


@settings(max_examples=300, deadline=None)
@given(messages())
def test_agree_on_generated_messages(data: bytes) -> None:
    assert_agree_on_datagram(data)
    assert_agree_on_stream(data + data)


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=120), st.booleans())
def test_agree_on_arbitrary_bodies(msg_type, length, body, classic) -> None:  # type: ignore[no-untyped-def]
    cookie = struct.pack("!I", 0x01020304) if classic else proto.MAGIC_COOKIE_BYTES
    assert_agree_on_datagram(struct.pack("!HH", msg_type, length) + cookie + bytes(12) + body)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=1, max_size=80))
def test_agree_on_arbitrary_bytes(data: bytes) -> None:
    assert_agree_on_datagram(data)
