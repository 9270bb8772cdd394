"""Two decoders, one answer, on damaged real messages: every message of the corpus and of
pcaps/ mutated the ways a broken or hostile peer would (bit flips, length fields edited,
truncation, attributes duplicated, splices; tests/mutations.py), compared field by field
as tests/test_codec_differential.py compares them. The same mutations run a million times
in tests/fuzz/campaign.py. The damaged messages that two decoders once read differently
are checked here by name."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mutations import mutate as damage
from mutations import seed_messages
from test_codec_differential import (
    assert_agree_on_datagram,
    assert_agree_on_stream,
    codec_view,
    scapy_view,
)

from stunscan import codec
from stunscan.layers import STUN

from corpus import CORPUS, needs_corpus

SEEDS = seed_messages()


def test_there_are_seeds() -> None:
    assert len(SEEDS) > 20


@needs_corpus
def test_password_algorithm_longer_than_its_parameters() -> None:
    data = bytes.fromhex((CORPUS / "damaged" / "pw-alg-disagree.hex").read_text().strip())
    layer = STUN(data)
    assert [a.type for a in layer.attributes] == [0x001D]
    assert layer.attributes[0].decoded == (1, b"")
    assert bytes(layer) == data
    assert codec_view(codec.decode(data)) == scapy_view(layer)


@needs_corpus
def test_unknown_attributes_with_101_codes_stays_stun() -> None:
    data = bytes.fromhex((CORPUS / "damaged" / "unknown-attributes-101.hex").read_text().strip())
    layer = STUN(data)
    assert type(layer) is STUN
    (attribute,) = layer.attributes
    assert len(attribute.codes) == 101
    assert codec_view(codec.decode(data)) == scapy_view(layer)


def test_unknown_attributes_as_long_as_a_message_allows() -> None:
    from stunscan.layers import make_attribute

    codes = list(range(16380))
    data = bytes(STUN(attributes=[make_attribute("UNKNOWN-ATTRIBUTES", codes=codes)]))
    layer = STUN(data)
    assert list(layer.attributes[0].codes) == codes
    assert codec_view(codec.decode(data)) == scapy_view(layer)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(range(len(SEEDS))),
    st.sampled_from(range(len(SEEDS))),
    st.integers(0, 2**32 - 1),
    st.integers(1, 4),
)
def test_agree_on_mutated_real_messages(index: int, other: int, seed: int, rounds: int) -> None:
    data = damage(SEEDS[index], random.Random(seed), SEEDS[other], rounds)
    if data:
        assert_agree_on_datagram(data)
        assert_agree_on_stream(data)


@pytest.mark.parametrize("mutation", range(10))
def test_each_mutation_kind_on_every_seed(mutation: int) -> None:
    from mutations import MUTATIONS

    rng = random.Random(mutation)
    for data in SEEDS:
        damaged = bytes(MUTATIONS[mutation](bytearray(data), rng, SEEDS[0]))
        if damaged:
            assert_agree_on_datagram(damaged)
