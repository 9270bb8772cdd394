"""Port bindings: UDP and TCP 3478 both ways, several messages per TCP segment, RFC 4571
frames, ChannelData, and the heuristic for other ports (on the corpus captures too)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from scapy.config import conf
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet
from scapy.utils import rdpcap

from stunscan.layers import (
    STUN,
    ChannelData,
    RFC4571Frame,
    STUNClassic,
    STUNStream,
    disable_heuristics,
    enable_heuristics,
    make_attribute,
)

from corpus import CORPUS, needs_corpus


@pytest.fixture
def no_heuristics() -> Iterator[None]:
    disable_heuristics()
    try:
        yield
    finally:
        enable_heuristics()


def _response() -> STUN:
    return STUN(
        type="Binding Success Response",
        attributes=[make_attribute("XOR-MAPPED-ADDRESS", address="203.0.113.9", port=4000)],
    )


@pytest.mark.parametrize(("sport", "dport"), [(40000, 3478), (3478, 40000)])
def test_udp_3478_both_directions(sport: int, dport: int) -> None:
    wire = bytes(
        IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=sport, dport=dport) / _response()
    )
    pkt = IP(wire)
    assert pkt[STUN].get_attribute("XOR-MAPPED-ADDRESS").address == "203.0.113.9"


def test_udp_over_ipv6_and_classic_and_channel_data() -> None:
    classic = STUNClassic(type="Binding Request")
    pkt = IPv6(bytes(IPv6(dst="2001:db8::1") / UDP(dport=3478) / classic))
    assert type(pkt[UDP].payload) is STUNClassic
    data = bytes(
        IP()
        / UDP(sport=3478, dport=5000)
        / ChannelData(channel=0x4001, data=b"hello")
        / b"\x00\x00\x00"
    )
    cd = IP(data)[ChannelData]
    assert cd.channel == 0x4001 and cd.data == b"hello" and bytes(cd.payload) == b"\x00\x00\x00"


@pytest.mark.parametrize(("sport", "dport"), [(40000, 3478), (3478, 40000)])
def test_tcp_3478_several_messages_in_one_segment(sport: int, dport: int) -> None:
    first = STUN(type="Allocate Request", attributes=[make_attribute("REQUESTED-TRANSPORT")])
    second = STUN(type="Binding Request")
    channel = ChannelData(channel=0x4000, data=b"abc") / b"\x00"  # padded to 4 over TCP
    third = _response()
    payload = bytes(first) + bytes(second) + bytes(channel) + bytes(third)
    pkt = IP(bytes(IP() / TCP(sport=sport, dport=dport, flags="PA") / payload))
    messages = pkt[STUNStream].messages
    assert [type(m) for m in messages] == [STUN, STUN, ChannelData, STUN]
    assert [m.transaction_id for m in messages if isinstance(m, STUN)] == [
        first.transaction_id,
        second.transaction_id,
        third.transaction_id,
    ]
    assert pkt.getlayer(STUN, 3).type_name == "Binding Success Response"
    assert bytes(pkt[TCP].payload) == payload


def test_tcp_message_split_across_segments_waits_for_the_rest() -> None:
    data = bytes(_response()) + bytes(STUN(type="Binding Request"))
    assert STUNStream.tcp_reassemble(data[:30], {}, None) is None
    whole = STUNStream.tcp_reassemble(data, {}, None)
    assert whole is not None and len(whole.messages) == 2


def test_tcp_text_is_not_stun() -> None:
    pkt = IP(bytes(IP() / TCP(dport=3478) / b"RSP/2.0 STUN\r\ntoken:1\r\n\r\n"))
    assert not pkt.haslayer(STUN)


def test_rfc4571_frames_in_a_tcp_stream() -> None:
    message = bytes(_response())
    framed = len(message).to_bytes(2, "big") + message
    pkt = IP(bytes(IP() / TCP(sport=50000, dport=42000) / (framed + framed)))
    messages = pkt[STUNStream].messages
    assert [type(m) for m in messages] == [RFC4571Frame, RFC4571Frame]
    assert messages[1].message.get_attribute("XOR-MAPPED-ADDRESS").port == 4000


def test_heuristic_finds_stun_on_other_ports_only_when_it_is_stun() -> None:
    stun_on_5000 = IP(bytes(IP() / UDP(sport=5000, dport=5001) / _response()))
    assert stun_on_5000.haslayer(STUN)
    noise = IP(bytes(IP() / UDP(sport=5000, dport=5001) / (b"\x00\x01\x00\x04" + bytes(20))))
    assert not noise.haslayer(STUN)
    tcp = IP(bytes(IP() / TCP(sport=5000, dport=80) / bytes(_response())))
    assert tcp.haslayer(STUNStream)


def test_heuristic_defers_to_other_layers(no_heuristics: None) -> None:
    pkt = IP(bytes(IP() / UDP(sport=5000, dport=5001) / _response()))
    assert not pkt.haslayer(STUN)
    assert isinstance(pkt[UDP].payload, conf.raw_layer)
    dns = IP(bytes(IP() / UDP(sport=5000, dport=53) / bytes(_response())))
    assert not dns.haslayer(STUN)


def _stun_messages(packets: list[Packet]) -> list[Packet]:
    found = []
    for pkt in packets:
        for layer in (STUNStream, STUN, ChannelData):
            if pkt.haslayer(layer):
                top = pkt.getlayer(layer)
                found.extend(top.messages if layer is STUNStream else [top])
                break
    return found


@needs_corpus
def test_ndpi_three_allocates_in_one_segment_on_port_3479() -> None:
    packets = rdpcap(str(CORPUS / "pcaps/ndpi/stun_tcp_multiple_msgs_same_pkt.pcap"))
    last = packets[-1][STUNStream].messages
    assert [m.type_name for m in last] == ["Allocate Request"] * 3
    earlier = [p[STUNStream].messages[0].transaction_id for p in packets[1:-1]]
    assert {m.transaction_id for m in last} == set(earlier)  # retransmissions, one ID


@needs_corpus
def test_arkime_turn_over_tcp_80_found_by_the_heuristic() -> None:
    messages = _stun_messages(rdpcap(str(CORPUS / "pcaps/arkime/turn.pcap")))
    names = [m.type_name for m in messages if isinstance(m, STUN)]
    assert names[:4] == [
        "Allocate Request",
        "Allocate Error Response",
        "Allocate Request",
        "Allocate Success Response",
    ]
    error = messages[1]
    assert error.get_attribute("ERROR-CODE").code == 401
    assert error.get_attribute("REALM").decoded == "turn.cloudflare.com"
    assert error.get_attribute("NONCE") is not None
    success = messages[3]
    assert str(success.get_attribute("XOR-RELAYED-ADDRESS").decoded) == "104.30.147.243:51142"
    peers = [
        str(m.get_attribute("XOR-PEER-ADDRESS").decoded)
        for m in messages
        if m.type_name == "CreatePermission Request"
    ]
    assert "108.56.17.155:40669" in peers


@needs_corpus
def test_arkime_stun_text_on_3478_is_not_stun() -> None:
    packets = rdpcap(str(CORPUS / "pcaps/arkime/stun.pcap"))
    texts = [p for p in packets if b"RSP/" in bytes(p)]  # RSP/1.0 over TCP, RSP/2.0 over UDP
    assert len(texts) == 2
    assert not any(p.haslayer(STUN) for p in texts)
    classic = [m for m in _stun_messages(packets) if isinstance(m, STUNClassic)]
    assert len(classic) == 3
    ms_turn = packets[1][STUN]
    assert ms_turn.type_name == "Allocate Request"
    assert ms_turn.malformed_reasons() == ["length 113 is not a multiple of 4"]
    assert ms_turn.get_attribute("BANDWIDTH").decoded == 12000


@needs_corpus
def test_ndpi_classic_then_rtp_on_the_same_ports() -> None:
    packets = rdpcap(str(CORPUS / "pcaps/ndpi/stun_classic.pcap"))
    messages = _stun_messages(packets)
    assert [type(m) for m in messages] == [STUNClassic, STUNClassic]
    assert str(messages[1].get_attribute("MAPPED-ADDRESS").decoded) == "172.16.63.224:55050"
    assert messages[0].get_attribute("CHANGE-REQUEST") is not None


@needs_corpus
def test_ndpi_mixed_capture_every_stun_packet_dissects_without_loss() -> None:
    packets = rdpcap(str(CORPUS / "pcaps/ndpi/stun.pcap"))
    messages = _stun_messages(packets)
    assert len(messages) > 50
    kinds = {type(m) for m in messages}
    assert {STUN, ChannelData, RFC4571Frame} <= kinds
    for message in messages:
        assert bytes(type(message)(bytes(message))) == bytes(message)
