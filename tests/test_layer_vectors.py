"""The Scapy layer against every RFC 5769 / RFC 8489 vector of the shared corpus:
dissect to the expected values, verify FINGERPRINT and MESSAGE-INTEGRITY, and build the
same bytes from fields alone."""

from __future__ import annotations

from typing import Any

import pytest

from stunscan import protocol as proto
from stunscan.layers import STUN, make_attribute

from corpus import needs_corpus, rfc_vectors

pytestmark = needs_corpus
GOOD = [v for v in rfc_vectors() if not v["expected"].get("decoder_must_reject")]
BROKEN = [v for v in rfc_vectors() if v["expected"].get("decoder_must_reject")]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def _key(vector: dict[str, Any]) -> bytes:
    creds = vector["credentials"]
    if creds["mechanism"] == "short-term":
        return proto.short_term_key(creds["password"])
    algorithm = "sha256" if "SHA-256" in creds["mechanism"] else "md5"
    password = creds.get("password_before_saslprep") or creds.get("password_before_opaquestring")
    return proto.long_term_key(creds["username"], creds["realm"], password, algorithm)


def test_corpus_has_the_vectors_we_expect() -> None:
    assert len(GOOD) == 5 and len(BROKEN) == 1


@pytest.mark.parametrize("vector", GOOD, ids=_ids(GOOD))
def test_dissects_to_expected_values(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    pkt = STUN(bytes.fromhex(vector["hex"]))
    assert type(pkt) is STUN
    assert pkt.type == int(expected["message_type"], 16)
    assert pkt.method == int(expected["method"], 16)
    assert pkt.message_class == proto.MessageClass[expected["class"].upper()]
    assert pkt.length == expected["message_length"]
    assert pkt.magic_cookie == int(expected["magic_cookie"], 16)
    assert pkt.transaction_id.hex() == expected["transaction_id"]
    assert pkt.malformed_reasons() == []
    assert len(pkt.attributes) == len(expected["attributes"])
    offset = proto.HEADER_SIZE
    for attr, want in zip(pkt.attributes, expected["attributes"], strict=True):
        assert want["offset"] == offset
        assert attr.type == int(want["type"], 16)
        assert attr.attribute_name == want["name"]
        assert attr.length == want["length"]
        assert attr.value_bytes().hex() == want["value_hex"]
        assert bytes(attr.padding).hex() == want.get("padding_hex", "")
        if "value" in want:
            value = want["value"]
            decoded = attr.decoded
            if isinstance(value, dict) and "address" in value:
                assert str(decoded.address) == value["address"]
                assert decoded.port == value["port"]
                assert proto.FAMILY_NAMES[decoded.family] == value["family"]
            elif isinstance(value, dict):
                assert decoded == (value["algorithm"], b"")
            else:
                assert decoded == value
        offset += len(bytes(attr))


@pytest.mark.parametrize("vector", GOOD, ids=_ids(GOOD))
def test_integrity_and_fingerprint_verify(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    pkt = STUN(bytes.fromhex(vector["hex"]))
    key = _key(vector)
    if "hmac_key_hex" in vector["credentials"]:
        assert key.hex() == vector["credentials"]["hmac_key_hex"]
    assert pkt.integrity_ok(key) is expected["message_integrity_valid"]
    assert pkt.integrity_ok(key + b"x") is False
    has_fingerprint = any(a["name"] == "FINGERPRINT" for a in expected["attributes"])
    assert pkt.fingerprint_ok() is (True if has_fingerprint else None)


def test_userhash_of_rfc8489_vector() -> None:
    (vector,) = [v for v in GOOD if v["name"].startswith("rfc8489")]
    creds = vector["credentials"]
    pkt = STUN(bytes.fromhex(vector["hex"]))
    assert pkt.get_attribute("USERHASH").value_bytes() == proto.userhash(
        creds["username"], creds["realm"]
    )


def _attribute_from_expectation(want: dict[str, Any], key: bytes) -> Any:
    kind = proto.attribute_kind(int(want["type"], 16))
    fields: dict[str, Any] = {}
    if "padding_hex" in want:
        fields["padding"] = bytes.fromhex(want["padding_hex"])
    value = want.get("value")
    if kind == "xor-address":
        fields.update(address=value["address"], port=value["port"])
    elif kind == "pw-alg":
        fields.update(algorithm=value["algorithm"])
    elif kind in ("hmac-sha1", "hmac-sha256"):
        fields.update(key=key)
    elif kind == "crc32":
        pass
    elif kind == "bytes":
        fields.update(value=bytes.fromhex(want["value_hex"]))
    else:
        fields.update(value=value)
    return make_attribute(want["name"], **fields)


@pytest.mark.parametrize("vector", GOOD, ids=_ids(GOOD))
def test_builds_byte_identical_from_fields(vector: dict[str, Any]) -> None:
    expected = vector["expected"]
    key = _key(vector)
    pkt = STUN(
        type=int(expected["message_type"], 16),
        transaction_id=bytes.fromhex(expected["transaction_id"]),
        attributes=[_attribute_from_expectation(a, key) for a in expected["attributes"]],
    )
    assert bytes(pkt).hex() == vector["hex"]


@pytest.mark.parametrize("vector", GOOD + BROKEN, ids=_ids(GOOD + BROKEN))
def test_dissected_vector_rebuilds_byte_identical(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    pkt = STUN(data)
    assert bytes(pkt) == data
    assert bytes(STUN(bytes(pkt.copy()))) == data


def test_broken_vector_is_reported_malformed_and_kept() -> None:
    (vector,) = BROKEN
    data = bytes.fromhex(vector["hex"])
    pkt = STUN(data)
    assert pkt.malformed
    assert pkt.malformed_reasons() == ["length field says 156 bytes, 136 follow the header"]
    assert [a.attribute_name for a in pkt.attributes] == [
        a["name"] for a in vector["expected"]["attributes"]
    ]
    assert "[malformed]" in pkt.summary()
