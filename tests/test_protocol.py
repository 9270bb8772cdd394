"""stunscan.protocol: the registry tables, type interleave, XOR coding, keys, heuristics."""

from __future__ import annotations

import csv
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stunscan import protocol as proto

from corpus import SHARED


def _tsv_rows(name: str) -> list[list[str]]:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"no {path}")
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return list(csv.reader(lines[1:], delimiter="\t"))


def test_attribute_table_matches_shared_registry_row_for_row() -> None:
    rows = _tsv_rows("stun-registry.tsv")
    expected = {int(code, 16): (name, kind, ref) for code, name, kind, ref in rows}
    actual = {c: (s.name, s.kind, s.reference) for c, s in proto.ATTRIBUTES.items()}
    assert actual == expected
    assert {s.kind for s in proto.ATTRIBUTES.values()} == set(proto.KINDS)


def test_method_table_matches_shared_methods() -> None:
    rows = _tsv_rows("stun-methods.tsv")
    assert proto.METHODS == {int(code, 16): name for code, name, _ in rows}


@pytest.mark.parametrize(
    ("msg_type", "name"),
    [
        (0x0001, "Binding Request"),
        (0x0011, "Binding Indication"),
        (0x0101, "Binding Success Response"),
        (0x0111, "Binding Error Response"),
        (0x0003, "Allocate Request"),
        (0x0113, "Allocate Error Response"),
        (0x0016, "Send Indication"),
        (0x0017, "Data Indication"),
        (0x0109, "ChannelBind Success Response"),
        (0x0200, "GOOG-PING Request"),
    ],
)
def test_message_type_names_both_ways(msg_type: int, name: str) -> None:
    assert proto.message_type_name(msg_type) == name
    assert proto.parse_message_type(name) == msg_type
    assert proto.parse_message_type(name.lower()) == msg_type


def test_type_interleave_is_a_bijection_on_14_bits() -> None:
    seen = set()
    for msg_type in range(0x4000):
        method, cls = proto.split_message_type(msg_type)
        assert proto.message_type(method, cls) == msg_type
        seen.add((method, cls))
    assert len(seen) == 0x4000


def test_type_interleave_rejects_out_of_range() -> None:
    with pytest.raises(ValueError):
        proto.message_type(0x1000, 0)
    with pytest.raises(ValueError):
        proto.parse_message_type("Frobnicate Request")


def test_xor_address_ipv4_rfc5769() -> None:
    value = bytes.fromhex("0001a147e112a643")
    key = proto.MAGIC_COOKIE_BYTES + bytes.fromhex("b7e7a701bc34d686fa87dfae")
    assert proto.decode_xor_address(value, key) == proto.Address(1, 32853, "192.0.2.1")
    assert proto.encode_xor_address("192.0.2.1", 32853, key) == value


def test_xor_address_ipv6_uses_transaction_id() -> None:
    key = proto.MAGIC_COOKIE_BYTES + bytes.fromhex("b7e7a701bc34d686fa87dfae")
    value = bytes.fromhex("0002a1470113a9faa5d3f179bc25f4b5bed2b9d9")
    decoded = proto.decode_xor_address(value, key)
    assert decoded == proto.Address(2, 32853, "2001:db8:1234:5678:11:2233:4455:6677")
    assert str(decoded) == "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
    other_key = proto.MAGIC_COOKIE_BYTES + bytes(12)
    assert proto.decode_xor_address(value, other_key).address != decoded.address


@given(st.ip_addresses(), st.integers(0, 0xFFFF), st.binary(min_size=16, max_size=16))
def test_xor_address_round_trip(ip, port, key) -> None:  # type: ignore[no-untyped-def]
    encoded = proto.encode_xor_address(str(ip), port, key)
    assert proto.decode_xor_address(encoded, key) == proto.Address(
        proto.FAMILY_IPV4 if ip.version == 4 else proto.FAMILY_IPV6, port, str(ip)
    )


@pytest.mark.parametrize("value", [b"", b"\x00\x01\x00", bytes(9), b"\x00\x03" + bytes(6)])
def test_bad_address_values_are_rejected(value: bytes) -> None:
    with pytest.raises(ValueError):
        proto.decode_address(value)


def test_fingerprint_is_crc32_xor_stun() -> None:
    assert proto.fingerprint(b"") == 0x5354554E
    assert proto.fingerprint(b"123456789") == 0xCBF43926 ^ 0x5354554E


def test_saslprep_rfc5769_password() -> None:
    assert proto.saslprep("The\u00adM\u00aatr\u2168") == "TheMatrIX"
    assert proto.saslprep("I\u00adX") == "IX"
    assert proto.saslprep("user\u00a0name") == "user name"


@pytest.mark.parametrize("bad", ["a\u0007b", "\u0627a", "x\ue000"])
def test_saslprep_rejects_prohibited_and_bad_bidi(bad: str) -> None:
    with pytest.raises(ValueError):
        proto.saslprep(bad)


def test_long_term_keys() -> None:
    user, realm, password = (
        "\u30de\u30c8\u30ea\u30c3\u30af\u30b9",
        "example.org",
        "The\u00adM\u00aatr\u2168",
    )
    assert proto.long_term_key(user, realm, password).hex() == "e8ca7ad59d5eb0518e312911d2dab2a9"
    assert (
        proto.long_term_key(user, realm, password, "sha256")
        == hashlib.sha256(f"{user}:{realm}:TheMatrIX".encode()).digest()
    )
    with pytest.raises(ValueError):
        proto.long_term_key(user, realm, password, "sha3")
    assert proto.userhash(user, realm).hex().startswith("4a3cf38fef6992bd")


def test_heuristic_accepts_reference_probe_and_rejects_near_misses() -> None:
    probe = proto.REFERENCE_PROBE
    assert proto.looks_like_stun(probe)
    assert not proto.looks_like_stun(probe[:19])
    assert not proto.looks_like_stun(probe + b"\x00")
    assert proto.looks_like_stun(probe + b"\x00", exact=False)
    assert not proto.looks_like_stun(b"\x80" + probe[1:])  # top bits
    assert not proto.looks_like_stun(probe[:4] + b"\x21\x12\xa4\x43" + probe[8:])  # cookie
    odd_length = probe[:2] + b"\x00\x02" + probe[4:] + b"\x00\x00"
    assert not proto.looks_like_stun(odd_length)  # not a multiple of 4


def test_classic_heuristic_requires_known_attributes_that_tile() -> None:
    header = bytes.fromhex("00010008") + bytes(range(1, 17))
    change_request = bytes.fromhex("0003000400000006")
    assert proto.looks_like_classic_stun(header + change_request)
    assert not proto.looks_like_classic_stun(
        header[:2] + b"\x00\x0c" + header[4:] + change_request + bytes(4)
    )
    unknown = bytes.fromhex("7777000400000006")
    assert not proto.looks_like_classic_stun(header + unknown)
    assert not proto.looks_like_classic_stun(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def test_channel_data_heuristic() -> None:
    assert proto.looks_like_channel_data(bytes.fromhex("40000003616263"))
    assert proto.looks_like_channel_data(bytes.fromhex("4000000361626300"))
    assert not proto.looks_like_channel_data(bytes.fromhex("400000036162"))
    assert not proto.looks_like_channel_data(bytes.fromhex("0000000361626300"))


def test_iter_attributes_is_bounded_by_the_buffer() -> None:
    message = proto.REFERENCE_PROBE[:2] + b"\x00\x0c" + proto.REFERENCE_PROBE[4:]
    message += bytes.fromhex("0001ffff") + b"\x01\x02\x03\x04"
    (attr,) = proto.iter_attributes(message)
    assert attr.truncated and attr.length == 0xFFFF and attr.value == b"\x01\x02\x03\x04"
    tail = list(proto.iter_attributes(proto.REFERENCE_PROBE + b"\x00\x01"))
    assert tail[0].code == -1 and tail[0].truncated


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("error-code", b"\x00\x00\x04", False),
        ("error-code", b"\x00\x00\x04\x01", True),
        ("address", bytes.fromhex("0001000102030405"), True),
        ("address", bytes.fromhex("0002000102030405"), False),
        ("u32", bytes(3), False),
        ("hmac-sha256", bytes(12), False),
        ("hmac-sha256", bytes(32), True),
        ("pw-algs", bytes.fromhex("0001000000020000"), True),
        ("pw-algs", bytes.fromhex("00010008"), False),
        ("even-port", b"\x80", True),
        ("empty", b"", True),
        ("string", b"\xff\xfe", True),
    ],
)
def test_value_length_problem(kind: str, value: bytes, ok: bool) -> None:
    assert (proto.value_length_problem(kind, value) is None) is ok
