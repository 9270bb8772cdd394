"""One capture pipeline: `decode` finds exactly the messages `pcap` finds, on every capture
of the corpus and of pcaps/ (and their gzipped copies), counted kind by kind and listed
message by message."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stunscan import protocol as proto
from stunscan.capture.files import capture_files_in
from stunscan.cli import app
from stunscan.pcap.analyzer import Analyzer
from stunscan.pcap.feed import PcapFeed

from corpus import CORPUS, PROJECT

runner = CliRunner()
CAPTURES = [
    *(capture_files_in(CORPUS / "pcaps") if CORPUS.is_dir() else []),
    *capture_files_in(PROJECT / "pcaps"),
    *(
        p
        for p in (capture_files_in(CORPUS / "damaged") if CORPUS.is_dir() else [])
        if p.stat().st_size
    ),
]


def decode_json(path: Path) -> list[dict[str, object]]:
    result = runner.invoke(app, ["decode", "--json", "-", str(path)])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def pcap_run(path: Path) -> tuple[Analyzer, list[tuple[object, ...]]]:
    """What `stunscan pcap --all-messages` sees, fast path included: its counts and every
    request, indication and response as (transport, src, sport, dst, dport, bytes)."""
    import socket

    analyzer = Analyzer(all_messages=True)
    seen = []
    for sightings in PcapFeed(path, analyzer):
        for s in sightings:
            family = socket.AF_INET6 if len(s.src) == 16 else socket.AF_INET
            seen.append(
                (
                    s.transport,
                    socket.inet_ntop(family, s.src),
                    s.sport,
                    socket.inet_ntop(family, s.dst),
                    s.dport,
                    s.data.hex(),
                )
            )
    analyzer.finish()
    return analyzer, seen


def kind_counts(rows: list[dict[str, object]]) -> dict[str, int]:
    wire = [r for r in rows if not r["quoted_in_icmp"]]
    return {
        "udp_messages": sum(r["transport"] == "udp" for r in wire),
        "tcp_messages": sum(r["transport"] == "tcp" for r in wire),
        "channel_data": sum(r["kind"] == proto.CHANNEL_DATA for r in wire),
        "classic_messages": sum(r["kind"] == proto.CLASSIC_MESSAGE for r in wire),
        "malformed": sum(bool(r["malformed"]) for r in wire),
        "icmp_quoting_stun": sum(bool(r["quoted_in_icmp"]) for r in rows),
    }


@pytest.mark.parametrize("path", CAPTURES, ids=[f"{p.parent.name}/{p.name}" for p in CAPTURES])
def test_decode_and_pcap_find_the_same_messages(path: Path, tmp_path: Path) -> None:
    rows = decode_json(path)
    analyzer, seen = pcap_run(path)
    stats = analyzer.stats
    assert kind_counts(rows) == {name: getattr(stats, name) for name in kind_counts(rows)}
    messages = [
        (r["transport"], r["src"], r["sport"], r["dst"], r["dport"], r["hex"])
        for r in rows
        if not r["quoted_in_icmp"] and r["kind"] in (proto.STUN_MESSAGE, proto.CLASSIC_MESSAGE)
    ]
    assert Counter(messages) == Counter(seen)
    assert len(messages) == stats.requests + stats.indications + stats.responses
    frames = [r["frame"] for r in rows]
    assert frames == sorted(frames) and all(1 <= f <= stats.frames for f in frames)
    # the same capture gzipped: the same messages for decode, the same counts for pcap
    zipped = tmp_path / (path.name + ".gz")
    zipped.write_bytes(gzip.compress(path.read_bytes()))
    assert decode_json(zipped) == [{**r, "origin": str(zipped)} for r in rows]
    assert pcap_run(zipped)[0].stats == stats


def test_the_corpus_is_all_there() -> None:
    names = {p.name for p in CAPTURES}
    assert {"stun.pcap", "turn.pcap", "coturn-ipv6.pcapng", "stund-classic.pcap"} <= names


def test_decode_finds_channel_data_and_sets_icmp_quotes_apart() -> None:
    rows = decode_json(CORPUS / "pcaps" / "ndpi" / "stun.pcap")
    channel = [r for r in rows if r["kind"] == proto.CHANNEL_DATA]
    assert len(channel) >= 18
    assert {(r["sport"], r["dport"]) for r in channel} >= {(38123, 40003), (40003, 38123)}
    quoted = [r for r in rows if r["quoted_in_icmp"]]
    assert quoted and all(r["transport"] == "udp" for r in quoted)
    result = runner.invoke(
        app, ["decode", str(CORPUS / "pcaps" / "ndpi" / "stun.pcap")], env={"COLUMNS": "250"}
    )
    assert result.stdout.count("quoted in ICMP") == len(quoted)
    first = rows[0]
    assert f"frame {first['frame']}  " in result.stdout
    assert f"{first['src']}:{first['sport']} → {first['dst']}:{first['dport']}  tcp" in (
        result.stdout
    )


def test_decode_reassembles_tcp() -> None:
    """A message split across two TCP segments: pcap's reassembly finds it, so decode does."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from stunscan.layers import STUN, make_attribute

    message = bytes(
        STUN(
            type="Binding Success Response",
            attributes=[make_attribute("SOFTWARE", value="split across segments")],
        )
    )
    base = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(
        src="192.0.2.1", dst="192.0.2.9"
    )
    packets = [
        base / TCP(sport=3478, dport=40000, seq=1000, flags="PA") / message[:13],
        base / TCP(sport=3478, dport=40000, seq=1013, flags="PA") / message[13:],
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "split.pcap"
        wrpcap(str(path), packets)
        (row,) = decode_json(path)
    assert row["hex"] == message.hex() and row["frame"] == 2 and row["transport"] == "tcp"
    assert [a["value"] for a in row["attributes"]] == ["split across segments"]
