"""Capture formats, link layers, IP and TCP framing of the Scapy-free analyser, on captures
written here with Scapy's own writers (and by hand where Scapy has no writer)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP, IPOption_RR, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw
from scapy.utils import PcapWriter, wrpcap

from stunscan import protocol as proto
from stunscan.capture.files import CaptureError, CaptureReader, Frame
from stunscan.layers import STUN, make_attribute
from stunscan.pcap.analyzer import Analyzer
from stunscan.record import Record

SERVER, CLIENT = "203.0.113.10", "198.51.100.20"


def ether(**fields: object) -> Ether:
    """Ethernet with fixed MACs: Scapy would otherwise look the destination up."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", **fields)


def request(tid: bytes = b"A" * 12) -> STUN:
    return STUN(type="Binding Request", transaction_id=tid)


def response(tid: bytes = b"A" * 12) -> STUN:
    return STUN(
        type="Binding Success Response",
        transaction_id=tid,
        attributes=[
            make_attribute("XOR-MAPPED-ADDRESS", address=CLIENT, port=40000),
            make_attribute("SOFTWARE", value="lab server"),
            make_attribute("FINGERPRINT"),
        ],
    )


def exchange(wrap=lambda p: p) -> list[Packet]:  # type: ignore[no-untyped-def]
    return [
        wrap(IP(src=CLIENT, dst=SERVER) / UDP(sport=40000, dport=3478) / request()),
        wrap(IP(src=SERVER, dst=CLIENT) / UDP(sport=3478, dport=40000) / response()),
    ]


def analyse(path: Path) -> tuple[Analyzer, list[Record]]:
    analyzer = Analyzer()
    reader = CaptureReader(path)
    records = [r for frame in reader for r in analyzer.feed(frame)]
    analyzer.finish()
    analyzer.problem = reader.problem  # type: ignore[attr-defined]
    return analyzer, records


def check_one_paired_server(path: Path, ip: str = SERVER) -> Record:
    analyzer, records = analyse(path)
    (record,) = records
    assert record.ip == ip and record.port == 3478
    assert record.request_size == 20
    assert record.addresses()[1] == proto.Address(1, 40000, CLIENT)
    assert record.software() == "lab server" and record.message.fingerprint is True
    assert analyzer.stats.paired == 1 and analyzer.stats.unanswered == 0
    return record


@pytest.mark.parametrize("endianness", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, endianness: str, nano: bool) -> None:
    path = tmp_path / "x.cap"  # the name says nothing: the magic decides
    packets = exchange(lambda p: ether() / p)
    for packet in packets:
        packet.time = 1_700_000_000.123456789
    with PcapWriter(str(path), nano=nano, endianness=endianness) as writer:
        writer.write(packets)
    record = check_one_paired_server(path)
    assert abs(record.time - 1_700_000_000.123456789) < 2e-6
    assert record.row()["timestamp"] == "2023-11-14 22:13:20"


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (1, lambda p: ether() / p),
        (1, lambda p: ether() / Dot1Q(vlan=7) / p),
        (1, lambda p: ether(type=0x88A8) / Dot1Q(vlan=100) / Dot1Q(vlan=7) / p),
        (113, lambda p: CookedLinux(proto=0x0800) / p),
        (276, lambda p: CookedLinuxV2(proto=0x0800) / p),
        (101, lambda p: p),
        (0, lambda p: Loopback(type=2) / p),
    ],
    ids=["ethernet", "802.1q", "qinq", "sll", "sll2", "raw-ip", "bsd-loopback"],
)
def test_link_layers(tmp_path: Path, linktype: int, wrap) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "link.pcap"
    wrpcap(str(path), exchange(wrap), linktype=linktype)
    check_one_paired_server(path)


def test_ipv4_options_and_fragments(tmp_path: Path) -> None:
    path = tmp_path / "v4.pcap"
    packets = exchange(
        lambda p: (
            ether()
            / IP(
                bytes(
                    p[IP].__class__(src=p[IP].src, dst=p[IP].dst, options=[IPOption_RR()]) / p[UDP]
                )
            )
        )
    )
    big = (
        IP(src=SERVER, dst=CLIENT)
        / UDP(sport=3478, dport=40001)
        / bytes(
            STUN(
                type="Binding Success Response",
                attributes=[make_attribute("DATA", value=bytes(3000))],
            )
        )
    )
    packets += [ether() / frag for frag in fragment(big, fragsize=1000)]
    wrpcap(str(path), packets)
    analyzer, records = analyse(path)
    assert len(records) == 1 and records[0].request_size == 20
    assert analyzer.stats.fragments == 4


def test_ipv6_with_extension_headers(tmp_path: Path) -> None:
    server, client = "2001:db8::10", "2001:db8::20"
    tid = b"B" * 12
    packets = [
        ether()
        / IPv6(src=client, dst=server)
        / IPv6ExtHdrHopByHop()
        / UDP(sport=40000, dport=3478)
        / request(tid),
        ether()
        / IPv6(src=server, dst=client)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=3478, dport=40000)
        / STUN(
            type="Binding Success Response",
            transaction_id=tid,
            attributes=[make_attribute("XOR-MAPPED-ADDRESS", address=client, port=40000)],
        ),
        ether()
        / IPv6(src=server, dst=client)
        / IPv6ExtHdrFragment(m=1)
        / UDP(sport=3478, dport=40000)
        / (b"x" * 40),
    ]
    path = tmp_path / "v6.pcap"
    wrpcap(str(path), packets)
    analyzer, records = analyse(path)
    (record,) = records
    assert record.ip == server and record.family == 6 and record.request_size == 20
    assert record.addresses()[1] == proto.Address(2, 40000, client)
    assert record.row()["xor_mapped_family"] == "02"
    assert analyzer.stats.fragments == 1


def _pcapng_block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def test_pcapng_two_interfaces_enhanced_and_simple_blocks(tmp_path: Path) -> None:
    """Interface 0 is raw IP with nanosecond stamps, interface 1 Ethernet; one SPB."""
    shb = _pcapng_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb0 = _pcapng_block(
        1, struct.pack("<HHI", 101, 0, 65535) + struct.pack("<HHB", 9, 1, 9) + bytes(3) + bytes(4)
    )
    idb1 = _pcapng_block(1, struct.pack("<HHI", 1, 0, 65535))
    req, resp = exchange()
    stamp = 1_700_000_000 * 10**9

    def epb(interface: int, data: bytes, ts: int) -> bytes:
        return _pcapng_block(
            6,
            struct.pack("<IIIII", interface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
            + data,
        )

    blocks = [
        shb,
        idb0,
        idb1,
        epb(0, bytes(req), stamp),
        epb(1, bytes(ether() / resp), stamp // 1000 + 5),
    ]
    blocks.append(_pcapng_block(3, struct.pack("<I", len(bytes(req))) + bytes(req)))
    path = tmp_path / "two.pcap"  # pcapng inside, whatever the name
    path.write_bytes(b"".join(blocks))
    analyzer, records = analyse(path)
    (record,) = records
    assert record.request_size == 20
    assert abs(record.time - 1_700_000_000.000005) < 1e-6
    assert analyzer.stats.requests == 2  # the SPB repeats the request


def test_truncated_capture_keeps_what_was_read(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    wrpcap(str(path), exchange(lambda p: ether() / p) * 2)
    data = path.read_bytes()
    path.write_bytes(data[:-7])
    analyzer, records = analyse(path)
    assert len(records) == 1
    assert "truncated packet data after 3 packets" in analyzer.problem  # type: ignore[attr-defined]


@pytest.mark.parametrize("content", [b"", b"hello world, not a capture", b"\xd4\xc3\xb2"])
def test_not_a_capture_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.pcap"
    path.write_bytes(content)
    with pytest.raises(CaptureError, match="not a pcap or pcapng capture"):
        list(CaptureReader(path))


def test_corrupt_record_length_stops_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pcap"
    wrpcap(str(path), exchange(lambda p: ether() / p))
    data = bytearray(path.read_bytes())
    data[24 + 8 : 24 + 12] = struct.pack("<I", 0x7FFFFFFF)
    path.write_bytes(bytes(data))
    reader = CaptureReader(path)
    assert list(reader) == []
    assert "corrupt packet record" in (reader.problem or "")


def _tcp_segments(payload: bytes, cuts: list[int], seq: int = 1000) -> list[Packet]:
    segments = []
    start = 0
    for cut in [*cuts, len(payload)]:
        segments.append(
            ether()
            / IP(src=SERVER, dst=CLIENT)
            / TCP(sport=3478, dport=40000, seq=seq + start, flags="PA")
            / Raw(payload[start:cut])
        )
        start = cut
    return segments


def test_tcp_message_split_across_segments_and_retransmitted(tmp_path: Path) -> None:
    tids = [bytes([i]) * 12 for i in range(3)]
    stream = b"".join(bytes(response(t)) for t in tids)
    segments = _tcp_segments(stream, [10, 50, 90])
    segments.insert(2, segments[1].copy())  # a retransmission
    request_segment = (
        ether()
        / IP(src=CLIENT, dst=SERVER)
        / TCP(sport=40000, dport=3478, seq=1, flags="PA")
        / b"".join(bytes(request(t)) for t in tids)
    )
    path = tmp_path / "tcp.pcap"
    wrpcap(str(path), [request_segment, *segments])
    analyzer, records = analyse(path)
    assert analyzer.stats.stun_messages == 6
    assert analyzer.stats.paired == 3
    assert [r.protocol for r in records] == ["tcp"]
    assert analyzer.stats.tcp_bytes_dropped == 0


def test_tcp_gap_drops_only_the_broken_message(tmp_path: Path) -> None:
    first, second = bytes(response(b"1" * 12)), bytes(response(b"2" * 12))
    segments = _tcp_segments(first + second, [30, len(first)])
    del segments[1]  # lost: the rest of the first message
    path = tmp_path / "gap.pcap"
    wrpcap(str(path), segments)
    analyzer, _ = analyse(path)
    assert analyzer.stats.stun_messages == 1
    assert analyzer.stats.tcp_bytes_dropped == 30


def test_text_on_3478_and_noise_elsewhere_are_not_stun(tmp_path: Path) -> None:
    packets = [
        ether()
        / IP(src=CLIENT, dst=SERVER)
        / UDP(sport=40000, dport=3478)
        / b"RSP/2.0 STUN\r\n\r\n",
        ether()
        / IP(src=CLIENT, dst=SERVER)
        / TCP(sport=40000, dport=3478, flags="PA")
        / b"RSP/1.0 HELLO\r\n\r\n",
        ether()
        / IP(src=CLIENT, dst=SERVER)
        / UDP(sport=5000, dport=5001)
        / (b"\x00\x01\x00\x04" + bytes(20)),
        ether() / IP(src=CLIENT, dst=SERVER) / UDP(sport=5000, dport=5001) / b"\x40\x00\x00\x00",
    ]
    path = tmp_path / "noise.pcap"
    wrpcap(str(path), packets)
    analyzer, records = analyse(path)
    assert analyzer.stats.stun_messages == 0 and records == []


def test_channel_data_only_inside_turn_flows(tmp_path: Path) -> None:
    """Off port 3478, ChannelData counts only on a flow where a channel was bound."""
    bind = STUN(
        type="ChannelBind Request",
        attributes=[
            make_attribute("CHANNEL-NUMBER", channel=0x4000),
            make_attribute("XOR-PEER-ADDRESS", address="192.0.2.50", port=9000),
        ],
    )
    allocate = STUN(type="Allocate Request", attributes=[make_attribute("REQUESTED-TRANSPORT")])
    channel = b"\x40\x00\x00\x04data"

    def udp(src: str, sport: int, dst: str, dport: int, payload: object) -> Packet:
        return ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / payload

    packets = [
        udp(CLIENT, 5000, SERVER, 5001, channel),  # not yet: no channel bound
        udp(CLIENT, 5000, SERVER, 5001, allocate),  # an allocation alone binds no channel
        udp(CLIENT, 5000, SERVER, 5001, channel),
        udp(CLIENT, 5000, SERVER, 5001, bind),
        udp(CLIENT, 5000, SERVER, 5001, channel),  # now both directions
        udp(SERVER, 5001, CLIENT, 5000, channel),
        udp(SERVER, 5001, CLIENT, 5002, channel),  # another flow
    ]
    packets[-1].time = packets[-2].time = packets[0].time
    path = tmp_path / "turn.pcap"
    wrpcap(str(path), packets)
    analyzer, _ = analyse(path)
    assert analyzer.stats.channel_data == 2
    assert analyzer.stats.stun_messages == 4


def test_a_request_unanswered_for_a_minute_is_given_up(tmp_path: Path) -> None:
    first_request, first_response = exchange(lambda p: ether() / p)
    second_request, _ = (ether() / p for p in exchange())
    second_request[STUN].transaction_id = b"B" * 12
    first_request.time, second_request.time, first_response.time = 1000, 1061, 1062
    path = tmp_path / "late.pcap"
    wrpcap(str(path), [first_request, second_request, first_response])
    analyzer, records = analyse(path)
    assert (analyzer.stats.unanswered, analyzer.stats.unsolicited, analyzer.stats.paired) == (
        2,
        1,
        0,
    )
    assert (
        records[0].request_size is None
        and records[0].amplification == records[0].response_size / 20
    )


def _raw_udp(src: str, sport: int, dst: str, dport: int, message: STUN, when: float) -> Frame:
    return Frame(when, 101, bytes(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / message))


def test_pairing_tables_stay_bounded_and_age_out() -> None:
    """Answered requests leave no trace; unanswered ones age out of both tables (a leak
    here once cost 60 MB on a million-packet capture)."""
    analyzer = Analyzer()
    for n in range(300):
        tid = n.to_bytes(12, "big")
        analyzer.feed(_raw_udp(CLIENT, 40000 + n, SERVER, 3478, request(tid), 1000.0 + n / 100))
        analyzer.feed(_raw_udp(SERVER, 3478, CLIENT, 40000 + n, response(tid), 1000.0 + n / 100))
    assert analyzer.stats.paired == 300
    assert not analyzer.pending and not analyzer.pending_by_client
    for n in range(50):  # unanswered
        tid = (1000 + n).to_bytes(12, "big")
        analyzer.feed(_raw_udp(CLIENT, 50000 + n, SERVER, 3478, request(tid), 1010.0))
    assert len(analyzer.pending) == len(analyzer.pending_by_client) == 50
    later = (5000).to_bytes(12, "big")
    analyzer.feed(_raw_udp(CLIENT, 60000, SERVER, 3478, request(later), 1010.0 + 61))
    assert len(analyzer.pending) == len(analyzer.pending_by_client) == 1
    assert analyzer.stats.unanswered == 50
