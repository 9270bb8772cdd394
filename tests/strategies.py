"""Hypothesis strategies shared by the layer and codec tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from stunscan.layers import STUN, make_attribute


def attributes() -> st.SearchStrategy[Any]:
    """Any attribute of the common kinds, with random values (some with odd padding)."""
    ip = st.ip_addresses().map(str)
    port = st.integers(0, 0xFFFF)
    text = st.text(max_size=40)
    blob = st.binary(max_size=40)
    return st.one_of(
        st.builds(lambda a, p: make_attribute("MAPPED-ADDRESS", address=a, port=p), ip, port),
        st.builds(lambda a, p: make_attribute("XOR-MAPPED-ADDRESS", address=a, port=p), ip, port),
        st.builds(lambda a, p: make_attribute("XOR-RELAYED-ADDRESS", address=a, port=p), ip, port),
        st.builds(lambda t: make_attribute("SOFTWARE", value=t), text),
        st.builds(lambda t: make_attribute("REALM", value=t), text),
        st.builds(lambda b: make_attribute("DATA", value=b), blob),
        st.builds(lambda c, b: make_attribute(c, value=b), st.integers(0xC100, 0xFFFF), blob),
        st.builds(lambda v: make_attribute("PRIORITY", value=v), st.integers(0, 2**32 - 1)),
        st.builds(lambda v: make_attribute("ICE-CONTROLLED", value=v), st.integers(0, 2**64 - 1)),
        st.builds(
            lambda c, r: make_attribute(
                "ERROR-CODE", error_class=c, number=r % 100, reason="x" * r
            ),
            st.integers(3, 6),
            st.integers(0, 99),
        ),
        st.builds(
            lambda cs: make_attribute("UNKNOWN-ATTRIBUTES", codes=cs), st.lists(port, max_size=5)
        ),
        st.builds(lambda: make_attribute("USE-CANDIDATE")),
        st.builds(
            lambda c: make_attribute("CHANNEL-NUMBER", channel=c), st.integers(0x4000, 0x7FFF)
        ),
        st.builds(
            lambda pad: make_attribute("SOFTWARE", value="ab", padding=pad),
            st.binary(min_size=2, max_size=2),
        ),
    )


def messages() -> st.SearchStrategy[bytes]:
    """Well-formed STUN messages built with the layer, some ending in FINGERPRINT."""
    return st.builds(
        lambda attrs, tid, msg_type, fp: bytes(
            STUN(
                type=msg_type,
                transaction_id=tid,
                attributes=[*attrs, make_attribute("FINGERPRINT")] if fp else attrs,
            )
        ),
        st.lists(attributes(), max_size=8),
        st.binary(min_size=12, max_size=12),
        st.integers(0, 0x3FFF),
        st.booleans(),
    )
