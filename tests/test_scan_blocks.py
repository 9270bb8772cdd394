"""The sender's block-at-a-time pipeline against the one-target-at-a-time definitions.

The sender never handles a target alone: the order comes in blocks of indexes, targets as
numpy columns, IDs from one AES call per block, frames as rows of an array. Each step is
checked here against its plain definition (the group walk one step at a time,
``TargetSpace[i]``, ``TransactionKey.transaction_id``, Scapy's dissection), and the whole
pipeline by decoding every frame a sender would send. Nothing is sent.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscan import codec
from stunscan.scan.frames import FrameBuilder, build_template
from stunscan.scan.order import CyclicOrder
from stunscan.scan.route import Route
from stunscan.scan.sender import Sender
from stunscan.scan.targets import Targets, TargetSpace, parse_target
from stunscan.scan.txid import TransactionKey


def _one_step_at_a_time(order: CyclicOrder, shards: int, shard: int) -> list[int]:
    """The definition of the walk: multiply by the step, skip elements past the space."""
    prime = order.prime
    x = order.start * pow(order.generator, shard, prime) % prime
    step = pow(order.generator, shards, prime)
    indexes = []
    for _ in range(order.shard_length(shards, shard)):
        if x <= order.size:
            indexes.append(x - 1)
        x = x * step % prime
    return indexes


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 5000),
    seed=st.integers(0, 2**32),
    shards=st.integers(1, 5),
    block=st.integers(1, 700),
    data=st.data(),
)
def test_blocks_are_the_walk_cut_into_pieces(
    size: int, seed: int, shards: int, block: int, data: st.DataObject
) -> None:
    order = CyclicOrder.for_space(size, seed)
    shard = data.draw(st.integers(0, shards - 1))
    blocks = list(order.blocks(shards, shard, block))
    assert all(piece.dtype == np.int64 for piece in blocks)
    assert [int(i) for piece in blocks for i in piece] == _one_step_at_a_time(order, shards, shard)


@pytest.mark.parametrize("size", [2**32 - 3, 2**32 + 5, 2**70])
def test_blocks_past_32_bit_primes_use_exact_integers(size: int) -> None:
    """Past p = 2^32 a product of two elements overflows 64 bits: the walk must stay exact."""
    order = CyclicOrder.for_space(size, 11)
    expected = []
    prime, x = order.prime, order.start
    while len(expected) < 3000:
        if x <= size:
            expected.append(x - 1)
        x = x * order.generator % prime
    got: list[int] = []
    for piece in order.blocks(block=1000):
        got.extend(int(i) for i in piece)
        if len(got) >= 3000:
            break
    assert got[:3000] == expected


def test_columns_are_the_space_indexed_one_by_one() -> None:
    crossing = "2001:db8::ffff:ffff:ffff:fffa-2001:db8:0:1::5"  # carries into the high half
    spans = [parse_target(text) for text in ("203.0.113.0/29", "198.51.100.7", crossing)]
    space = TargetSpace.build(spans, (3478, 5349, 19302), [])
    indexes = np.random.default_rng(5).permutation(len(space)).astype(np.int64)
    columns = space.columns(indexes)
    for row, index in enumerate(indexes):
        version, address, port = space[int(index)]
        got = int(columns.high[row]) << 64 | int(columns.low[row])
        assert (int(columns.version[row]), got, int(columns.port[row])) == (version, address, port)
    assert {int(h) for h, v in zip(columns.high, columns.version, strict=True) if v == 6} == {
        0x20010DB800000000,
        0x20010DB800000001,
    }


def test_columns_of_a_space_too_large_for_int64() -> None:
    space = TargetSpace.build([parse_target("2001:db8::/64")], (3478, 3479), [])
    assert space.size == 2**65
    indexes = np.array([0, 2**65 - 1, 2**64 + 7], dtype=object)
    columns = space.columns(indexes)
    for row, index in enumerate(indexes):
        _, address, port = space[index]
        assert int(columns.high[row]) << 64 | int(columns.low[row]) == address
        assert int(columns.port[row]) == port


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("size", [12, 16])
def test_batched_ids_are_the_single_ids(version: int, size: int) -> None:
    key = TransactionKey(size=size)
    rng = np.random.default_rng(version * size)
    bits = 32 if version == 4 else 128
    addresses = [int.from_bytes(rng.bytes(bits // 8), "big") for _ in range(200)]
    ports = rng.integers(0, 65536, 200)
    probes = rng.integers(0, 256, 200).astype(np.uint8)
    ids = key.transaction_ids(version, Targets.of(version, addresses, ports), probes)
    assert ids.shape == (200, size)
    for row, address in enumerate(addresses):
        packed = address.to_bytes(bits // 8, "big")
        single = key.transaction_id(packed, int(ports[row]), int(probes[row]))
        assert ids[row].tobytes() == single
        assert key.probe_number(single, packed, int(ports[row])) == probes[row]


def test_ids_keep_the_families_apart() -> None:
    """0.0.0.1 and ::1 fill the first block alike; the version in the second tells them apart."""
    key = TransactionKey()
    v4 = key.transaction_id(ipaddress.ip_address("0.0.0.1").packed, 3478)
    v6 = key.transaction_id(ipaddress.ip_address("::1").packed, 3478)
    assert v4 != v6
    assert key.probe_number(v4, ipaddress.ip_address("::1").packed, 3478) is None


def test_a_key_is_16_bytes() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        TransactionKey(secret=bytes(32))


def _route(version: int) -> Route:
    source = "2001:db8:ffff::2" if version == 6 else "192.0.2.2"
    return Route(
        version, "scan0", source, bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
    )


def _decode(frame: bytes) -> tuple[str, int, int, bytes, bool]:
    """(destination, destination port, source port, transaction ID, checksums right)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    packet = Ether(frame)
    network = packet[IPv6] if IPv6 in packet else packet[IP]
    rebuilt = packet.copy()
    if IP in rebuilt:
        del rebuilt[IP].chksum
    del rebuilt[UDP].chksum
    message = codec.decode(bytes(packet[UDP].payload))
    assert message is not None and not message.malformed
    checksums = bytes(Ether(bytes(rebuilt))) == frame and message.fingerprint is not False
    return network.dst, packet[UDP].dport, packet[UDP].sport, message.transaction_id, checksums


@pytest.mark.parametrize("probe", ["binding", "classic", "fingerprint", "shadowserver"])
def test_every_frame_a_sender_builds(probe: str) -> None:
    """Mixed families, several ports, 3 probes a target, a rotating source port range and
    a target limit: each target gets its probes in a row, each ID validates, nothing else."""
    spans = [parse_target(text) for text in ("203.0.113.0/29", "2001:db8:1::/126")]
    space = TargetSpace.build(spans, (3478, 3479), [])
    template = build_template(probe)
    key = TransactionKey(size=16 if template.id_size == 16 else 12)
    builders = {version: FrameBuilder(_route(version), template) for version in (4, 6)}
    sender = Sender(space, key, builders, {}, probes=3, source_ports=(40000, 40002), max_targets=20)
    order = CyclicOrder.for_space(len(space), 3)
    batches = list(sender.batches(order.blocks(block=7), chunk=4))
    assert all(len(frames) <= 4 for _, frames in batches)
    frames = [(version, row.tobytes()) for version, block in batches for row in block]
    assert len(frames) == 20 * 3
    decoded = [_decode(frame) for _, frame in frames]
    assert all(checksums for *_, checksums in decoded)
    assert [source for _, _, source, _, _ in decoded] == [40000 + i % 3 for i in range(60)]
    probed = Counter((address, port) for address, port, *_ in decoded)
    chosen = []
    for piece in order.blocks(block=7):
        chosen.extend(space[int(index)] for index in piece)
    expected = {(str(ipaddress.ip_address(address)), port) for _, address, port in chosen[:20]}
    assert set(probed) == expected and set(probed.values()) == {3}
    for (version, _), (address, port, _, ident, _) in zip(frames, decoded, strict=True):
        assert ipaddress.ip_address(address).version == version
        if template.id_size == 0:
            assert ident == bytes(12)
            continue
        ident = ident[-template.id_size :]
        packed = ipaddress.ip_address(address).packed
        assert key.probe_number(ident, packed, port) == ident[-1]
    for first in range(0, 60, 3):  # a target's probes go out one after the other
        triple = decoded[first : first + 3]
        assert len({(address, port) for address, port, *_ in triple}) == 1
        if template.id_size:
            assert [ident[-1] for *_, ident, _ in triple] == [0, 1, 2]


def test_ipv4_identification_is_the_ids_last_two_bytes() -> None:
    builder = FrameBuilder(_route(4), build_template("binding"))
    ident = bytes(range(1, 13))
    frame = builder.frame(0xCB007101, 3478, 40000, ident)
    assert struct.unpack("!H", frame[18:20])[0] == 0x0B0C
