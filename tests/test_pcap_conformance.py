"""`stunscan pcap` against other tools' findings on the same corpus captures: the
addresses nDPI and Arkime list are found, and message counts match tshark's."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stunscan import protocol as proto
from stunscan.capture.files import CaptureReader
from stunscan.pcap.analyzer import Analyzer
from stunscan.record import Record

from corpus import CORPUS, needs_corpus

pytestmark = needs_corpus
PCAPS = CORPUS / "pcaps"


def analyse(path: Path, all_messages: bool = True) -> tuple[Analyzer, list[Record]]:
    analyzer = Analyzer(all_messages=all_messages)
    records = [r for frame in CaptureReader(path) for r in analyzer.feed(frame)]
    analyzer.finish()
    return analyzer, records


def _endpoint(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return str(ipaddress.ip_address(host.strip("[]"))), int(port)


def decoded_addresses(records: list[Record]) -> dict[str, set[tuple[str, int]]]:
    """Every address attribute decoded, by what nDPI calls it."""
    labels = {
        "MAPPED-ADDRESS": "Mapped",
        "XOR-MAPPED-ADDRESS": "Mapped",
        "XOR-MAPPED-ADDRESS (legacy)": "Mapped",
        "XOR-RELAYED-ADDRESS": "Relayed",
        "XOR-PEER-ADDRESS": "Peer",
        "RESPONSE-ORIGIN": "Rsp Origin",
        "OTHER-ADDRESS": "Other",
    }
    found: dict[str, set[tuple[str, int]]] = {label: set() for label in labels.values()}
    for record in records:
        for attr in record.message.attributes:
            if attr.name in labels and not attr.problem:
                found[labels[attr.name]].add((attr.decoded.address, attr.decoded.port))
    return found


NDPI = sorted(PCAPS.glob("ndpi/*.pcap"))


@pytest.mark.parametrize("path", NDPI, ids=[p.name for p in NDPI])
def test_every_address_ndpi_lists_is_decoded(path: Path) -> None:
    expected = re.findall(
        r"\[(Mapped|Relayed|Peer|Rsp Origin|Other) IP/Port: (\[[^\]]+\]:\d+|[^\]\s]+)\]",
        path.with_name(path.name + ".default.out").read_text(),
    )
    _, records = analyse(path)
    found = decoded_addresses(records)
    for label, endpoint in expected:
        assert _endpoint(endpoint) in found[label], (label, endpoint)
    if path.name == "stun.pcap":
        assert len(expected) >= 10


def _tshark_count(path: Path, *extra: str) -> int:
    tshark = shutil.which("tshark")
    assert tshark, "tshark is needed (the README's test command installs it)"
    out = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            *extra,
            "-Y",
            "stun",
            "-T",
            "fields",
            "-e",
            "stun.type",
            "-e",
            "stun.channel",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    count = 0
    for line in out.splitlines():
        types, _, channel = line.partition("\t")
        count += len(types.split(",")) if types else int(bool(channel))
    return count


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("ndpi/stun.pcap", ()),
        ("ndpi/stun_tcp_multiple_msgs_same_pkt.pcap", ()),
        ("zeek/stun-attribute-length-ffff.pcap", ()),
        ("zeek/stun-malformed-error.pcap", ()),
        ("arkime/turn.pcap", ("-d", "tcp.port==80,stun")),
    ],
)
def test_message_counts_match_tshark(name: str, extra: tuple[str, ...]) -> None:
    analyzer, _ = analyse(PCAPS / name)
    stats = analyzer.stats
    # tshark also counts the STUN message an ICMP port-unreachable quotes.
    assert stats.stun_messages + stats.icmp_quoting_stun == _tshark_count(PCAPS / name, *extra)
    assert stats.stun_messages > 0


def test_turn_over_tcp_80_found_without_being_told() -> None:
    analyzer, records = analyse(PCAPS / "arkime/turn.pcap")
    found = decoded_addresses(records)
    assert ("108.56.17.155", 61109) in found["Mapped"]
    assert found["Relayed"] == {("104.30.147.243", 51142)}
    assert {ip for ip, _ in found["Peer"]} == {
        "104.30.146.131",
        "104.30.147.234",
        "104.30.147.248",
        "104.30.150.190",
        "108.56.17.155",
        "192.168.1.1",
    }
    assert {port for _, port in found["Peer"]} == {40669, 43377, 43499, 44080, 44279, 45360}
    errors = [r for r in records if r.message.msg_class == proto.MessageClass.ERROR_RESPONSE]
    assert errors[0].message.get("ERROR-CODE").decoded[0] == 401
    assert errors[0].message.get("REALM").decoded == "turn.cloudflare.com"
    assert (analyzer.stats.tcp_messages, analyzer.stats.udp_messages) == (15, 0)


def test_arkime_oddities() -> None:
    analyzer, records = analyse(PCAPS / "arkime/stun.pcap")
    # requests: ip names the server they went to, client the sender
    assert all(r.direction == "request" for r in records)
    sources = sorted(r.client.rpartition(":")[0] for r in records)
    # the three classic requests and the MS-TURN Allocate; not the two texts on port 3478
    assert sources == ["10.0.0.1", "10.0.0.3", "10.0.0.7", "10.0.0.8"]
    assert analyzer.stats.classic_messages == 3
    (allocate,) = [r.message for r in records if r.client.startswith("10.0.0.3:")]
    assert allocate.malformed == ["length 113 is not a multiple of 4"]
    assert analyzer.stats.unanswered == 4


def test_zeek_malformed_are_marked_and_kept() -> None:
    _, records = analyse(PCAPS / "zeek/stun-malformed-error.pcap", all_messages=False)
    (record,) = records
    assert record.message.malformed[0] == "ERROR-CODE: error-code value of 3 bytes (at least 4)"
    assert record.row()["message_type"] == "0111"
    assert record.request_size is not None  # paired with the request in the capture
