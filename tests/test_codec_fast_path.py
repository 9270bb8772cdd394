"""The analyser's fast path (codec.peek and its structure check) gives the full decoder's
verdict on every input: same kind, type, ID and size, and well formed exactly when the
full decode finds nothing malformed."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscan import codec
from stunscan import protocol as proto

from corpus import fuzz_seeds, rfc_vectors
from strategies import messages


def assert_same_verdict(data: bytes, datagram: bool = True) -> None:
    full = codec.decode(data, datagram=datagram)
    quick = codec.peek(data, datagram=datagram)
    if full is None:
        assert quick is None
        return
    assert quick is not None
    kind, msg_type, tid, size, ok = quick
    assert kind == full.kind
    assert ok == (not full.malformed), (data.hex(), full.malformed)
    if full.kind in (proto.STUN_MESSAGE, proto.CLASSIC_MESSAGE):
        assert (msg_type, tid, size) == (full.msg_type, full.transaction_id, full.size)


@pytest.mark.parametrize("vector", rfc_vectors(), ids=[v["name"] for v in rfc_vectors()])
def test_rfc_vectors(vector: dict[str, object]) -> None:
    assert_same_verdict(bytes.fromhex(str(vector["hex"])))


@pytest.mark.parametrize("seed", fuzz_seeds(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fuzz_seeds(seed: Path) -> None:
    data = seed.read_bytes()
    assert_same_verdict(data)
    assert_same_verdict(data, datagram=False)


@settings(max_examples=300, deadline=None)
@given(messages(), st.booleans())
def test_generated_messages(data: bytes, datagram: bool) -> None:
    assert_same_verdict(data, datagram)
    assert_same_verdict(data + b"\x00\x01", datagram)


@settings(max_examples=1000, deadline=None)
@given(
    st.integers(0, 0x3FFF),
    st.integers(0, 0x120),
    st.lists(
        st.tuples(st.sampled_from(sorted(proto.ATTRIBUTES)), st.binary(max_size=24)), max_size=5
    ),
    st.binary(max_size=3),
)
def test_known_codes_with_random_values(msg_type, length_slack, tlvs, tail) -> None:  # type: ignore[no-untyped-def]
    body = (
        b"".join(
            struct.pack("!HH", code, len(value))
            + value
            + bytes(proto.padded(len(value)) - len(value))
            for code, value in tlvs
        )
        + tail
    )
    length = len(body) if length_slack % 3 else length_slack
    assert_same_verdict(
        struct.pack("!HH", msg_type, length) + proto.MAGIC_COOKIE_BYTES + bytes(12) + body
    )
