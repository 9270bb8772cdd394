"""Every attribute kind builds, dissects back to the same values and rebuilds the same
bytes; random attribute lists do too (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscan import protocol as proto
from stunscan.layers import KIND_CLASSES, STUN, STUNAttribute, STUNClassic, make_attribute

from strategies import attributes

# One example per registry kind: (attribute name, fields to build it, expected .decoded)
EXAMPLES: dict[str, tuple[str, dict[str, Any], Any]] = {
    "address": (
        "MAPPED-ADDRESS",
        {"address": "203.0.113.7", "port": 3478},
        proto.Address(1, 3478, "203.0.113.7"),
    ),
    "xor-address": (
        "XOR-PEER-ADDRESS",
        {"address": "2001:db8::5", "port": 40000},
        proto.Address(2, 40000, "2001:db8::5"),
    ),
    "string": ("SOFTWARE", {"value": "stünscan 0.1"}, "stünscan 0.1"),
    "bytes": ("DATA", {"value": b"\x00\x01\x02"}, b"\x00\x01\x02"),
    "u32": ("LIFETIME", {"value": 600}, 600),
    "u64": ("ICE-CONTROLLING", {"value": 2**64 - 2}, 2**64 - 2),
    "flags": ("CHANGE-REQUEST", {"change_ip": 1, "change_port": 1}, 6),
    "empty": ("USE-CANDIDATE", {}, None),
    "error-code": (
        "ERROR-CODE",
        {"error_class": 4, "number": 1, "reason": "Unauthorized"},
        (401, "Unauthorized"),
    ),
    "attr-list": (
        "UNKNOWN-ATTRIBUTES",
        {"codes": [0x0024, 0x7777, 0x8029]},
        (0x24, 0x7777, 0x8029),
    ),
    "crc32": ("FINGERPRINT", {"crc": 0x12345678}, 0x12345678),
    "hmac-sha1": ("MESSAGE-INTEGRITY", {"hmac": bytes(range(20))}, bytes(range(20))),
    "hmac-sha256": ("MESSAGE-INTEGRITY-SHA256", {"hmac": bytes(range(32))}, bytes(range(32))),
    "channel": ("CHANNEL-NUMBER", {"channel": 0x4001}, 0x4001),
    "transport": ("REQUESTED-TRANSPORT", {"protocol": 6}, 6),
    "family": ("REQUESTED-ADDRESS-FAMILY", {"family": 2}, 2),
    "even-port": ("EVEN-PORT", {"reserve_next": 1}, True),
    "pw-algs": (
        "PASSWORD-ALGORITHMS",
        {"algorithms": []},
        (),
    ),
    "pw-alg": ("PASSWORD-ALGORITHM", {"algorithm": 1, "params": b"ab"}, (1, b"ab")),
    "counter": ("TRANSACTION_TRANSMIT_COUNTER", {"request": 3, "response": 1}, (3, 1)),
    "addr-error": (
        "ADDRESS-ERROR-CODE",
        {"family": 2, "error_class": 4, "number": 40, "reason": "AF not supported"},
        (2, 440, "AF not supported"),
    ),
    "icmp": (
        "ICMP",
        {"icmp_type": 3, "icmp_code": 3, "error_data": 1500},
        (3, 3, 1500),
    ),
}


def test_every_registry_kind_has_a_class_and_an_example() -> None:
    assert set(KIND_CLASSES) == set(proto.KINDS) == set(EXAMPLES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_kind_round_trips_inside_a_message(kind: str) -> None:
    name, fields, decoded = EXAMPLES[kind]
    built = STUN(type="Allocate Request", attributes=[make_attribute(name, **fields)])
    wire = bytes(built)
    assert len(wire) % 4 == 0
    assert int.from_bytes(wire[2:4], "big") == len(wire) - 20
    again = STUN(wire)
    (attr,) = again.attributes
    assert type(attr) is KIND_CLASSES[kind]
    assert attr.attribute_name == name
    assert attr.decoded == decoded
    assert again.malformed_reasons() == []
    assert bytes(again) == wire
    assert attr.value_text()  # every kind renders something for people ...
    assert name.split("-")[0] in again.attributes[0].mysummary()  # ... and names itself


def test_password_algorithms_list_round_trips_with_params_padding() -> None:
    from stunscan.layers import STUNPasswordAlgorithm

    attr = make_attribute(
        "PASSWORD-ALGORITHMS",
        algorithms=[
            STUNPasswordAlgorithm(algorithm=1),
            STUNPasswordAlgorithm(algorithm=2, params=b"xyz"),
        ],
    )
    wire = bytes(STUN(attributes=[attr]))
    again = STUN(wire).attributes[0]
    assert again.decoded == ((1, b""), (2, b"xyz"))
    assert again.value_text() == "MD5, SHA-256"
    assert bytes(STUN(wire)) == wire


def test_xor_address_keeps_raw_value_and_follows_the_transaction_id() -> None:
    tid = bytes.fromhex("b7e7a701bc34d686fa87dfae")
    pkt = STUN(
        type="Binding Success Response",
        transaction_id=tid,
        attributes=[make_attribute("XOR-MAPPED-ADDRESS", address="192.0.2.1", port=32853)],
    )
    wire = bytes(pkt)
    assert wire.endswith(bytes.fromhex("002000080001a147e112a643"))
    attr = STUN(wire).attributes[0]
    assert attr.raw_port == 0xA147 and attr.raw_address == bytes.fromhex("e112a643")
    v6 = STUN(
        transaction_id=tid,
        attributes=[make_attribute("XOR-MAPPED-ADDRESS", address="2001:db8::1", port=1)],
    )
    v6_other = v6.copy()
    v6_other.transaction_id = bytes(12)
    assert bytes(v6)[-16:] != bytes(v6_other)[-16:]
    assert STUN(bytes(v6_other)).attributes[0].address == "2001:db8::1"


def test_classic_message_round_trips_with_128_bit_id() -> None:
    tid = bytes(range(16))
    pkt = STUNClassic(
        type="Binding Request",
        transaction_id=tid,
        attributes=[make_attribute("CHANGE-REQUEST", change_port=1)],
    )
    wire = bytes(pkt)
    assert wire[:4] == bytes.fromhex("00010008") and wire[4:20] == tid
    again = STUN(wire)
    assert type(again) is STUNClassic
    assert isinstance(again, STUN) and again.haslayer(STUN)
    assert again.transaction_id == tid
    assert again.get_attribute("CHANGE-REQUEST").value_text() == "change-port"


def test_unknown_code_is_generic_and_rebuilds_identically() -> None:
    wire = bytes.fromhex(
        "000100102112a442" + "00" * 12 + "7777000501020304059999990000000000000000"
    )[:36]
    wire = wire[:2] + b"\x00\x0c" + wire[4:20] + bytes.fromhex("777700050102030405aabbcc")
    pkt = STUN(wire)
    (attr,) = pkt.attributes
    assert type(attr) is STUNAttribute and attr.attribute_name == "0x7777"
    assert attr.value_bytes() == bytes.fromhex("0102030405")
    assert bytes(attr.padding) == bytes.fromhex("aabbcc")
    assert pkt.malformed_reasons() == []
    assert bytes(pkt) == wire


def test_nonzero_padding_survives_and_default_padding_is_zero() -> None:
    built = bytes(STUN(attributes=[make_attribute("SOFTWARE", value="abc")]))
    assert built[-4:] == b"abc\x00"
    padded = bytes(STUN(attributes=[make_attribute("SOFTWARE", value="abc", padding=b" ")]))
    assert padded[-4:] == b"abc " and bytes(STUN(padded)) == padded


def test_integrity_and_fingerprint_are_computed_at_build_time() -> None:
    key = proto.long_term_key("alice", "example.org", "secret")
    pkt = STUN(
        type="Allocate Request",
        attributes=[
            make_attribute("REQUESTED-TRANSPORT"),
            make_attribute("USERNAME", value="alice"),
            make_attribute("MESSAGE-INTEGRITY", key=key),
            make_attribute("MESSAGE-INTEGRITY-SHA256", key=key),
            make_attribute("FINGERPRINT"),
        ],
    )
    again = STUN(bytes(pkt))
    assert again.integrity_ok(key) is True
    assert again.integrity_ok(b"wrong") is False
    assert again.fingerprint_ok() is True
    assert len(again.get_attribute("MESSAGE-INTEGRITY-SHA256").hmac) == 32
    tampered = bytearray(bytes(pkt))
    tampered[26] ^= 1  # inside REQUESTED-TRANSPORT
    assert STUN(bytes(tampered)).fingerprint_ok() is False
    assert STUN(bytes(tampered)).integrity_ok(key) is False


def test_mysummary_reads_like_a_sentence() -> None:
    pkt = STUN(
        type="Binding Success Response",
        attributes=[
            make_attribute("XOR-MAPPED-ADDRESS", address="192.0.2.1", port=32853),
            make_attribute("SOFTWARE", value="test vector"),
        ],
    )
    assert STUN(bytes(pkt)).summary() == (
        "STUN Binding Success Response XOR-MAPPED 192.0.2.1:32853 SOFTWARE 'test vector'"
    )


def test_answers_and_hashret_pair_request_and_response() -> None:
    request = STUN(type="Binding Request")
    response = STUN(type="Binding Success Response", transaction_id=request.transaction_id)
    other = STUN(type="Binding Success Response")
    assert response.answers(request) and not other.answers(request)
    assert not request.answers(response)
    assert response.hashret() == request.hashret()


# --------------------------------------------------------------------------- hypothesis


@settings(max_examples=200, deadline=None)
@given(
    st.lists(attributes(), max_size=8),
    st.binary(min_size=12, max_size=12),
    st.builds(proto.message_type, st.sampled_from(sorted(proto.METHODS)), st.integers(0, 3)),
    st.booleans(),
)
def test_random_attribute_lists_round_trip(attrs, tid, msg_type, fingerprint) -> None:  # type: ignore[no-untyped-def]
    if fingerprint:
        attrs = [*attrs, make_attribute("FINGERPRINT")]
    pkt = STUN(type=msg_type, transaction_id=tid, attributes=attrs)
    wire = bytes(pkt)
    again = STUN(wire)
    assert type(again) is STUN
    assert bytes(again) == wire
    assert again.malformed_reasons() == []
    assert [a.decoded for a in again.attributes] == [
        STUN(bytes(pkt)).attributes[i].decoded for i in range(len(attrs))
    ]
    assert [type(a) for a in again.attributes] == [type(a) for a in attrs]
    for built, dissected in zip(attrs, again.attributes, strict=True):
        if hasattr(built, "address"):
            assert dissected.address == str(built.address) or ":" in dissected.address
            assert dissected.port == built.port
    assert again.fingerprint_ok() is (True if fingerprint else None)
