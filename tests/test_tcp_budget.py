"""TCP reassembly stays within one byte budget over all flows (``pcap --tcp-buffer``): a
capture of thousands of half-finished STUN messages over TCP never makes the analyser hold
more than the budget, the flows it had to forget and their bytes are counted, and the
summary says so. Measured in the analyser (the bytes its flows hold), not as RSS."""

from __future__ import annotations

import struct
from pathlib import Path

from typer.testing import CliRunner

from stunscan import protocol as proto
from stunscan.capture.files import CaptureReader, Frame
from stunscan.capture.stream import TCP_BUFFER_BUDGET
from stunscan.cli import app
from stunscan.pcap.analyzer import Analyzer

FLOWS = 3000
SENT = 1500
"""Bytes each flow sends of a message that declares 60,000: none ever completes."""
MIB = 1 << 20


def tcp_frame(client: int, seq: int, payload: bytes, flags: int = 0x18) -> bytes:
    """Ethernet/IPv4/TCP from 198.51.100.x:(port) to 192.0.2.1:3478."""
    source = bytes([198, 51, 100, client % 250 + 1])
    sport = 20000 + client
    tcp = struct.pack("!HHIIBBHHH", sport, 3478, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, source,
                     bytes([192, 0, 2, 1]))  # fmt: skip
    return bytes(6) + bytes(5) + b"\x01" + b"\x08\x00" + ip + tcp


def half_messages() -> list[bytes]:
    """FLOWS flows, each with the first SENT bytes of a 60,020-byte Binding request, in two
    segments, interleaved; then one flow that completes a small message."""
    frames = []
    head = struct.pack("!HH", 0x0001, 60000) + proto.MAGIC_COOKIE_BYTES + bytes(12)
    body = head + b"\xab" * (SENT - len(head))  # (an evicted flow's rest is not STUN)
    for offset, part in ((0, body[:700]), (700, body[700:])):
        for client in range(FLOWS):
            frames.append(tcp_frame(client, 1000 + offset, part))
    whole = proto.encode_message(0x0001, b"x" * 12, [])
    frames.append(tcp_frame(FLOWS, 5000, whole[:10]))
    frames.append(tcp_frame(FLOWS, 5010, whole[10:]))
    return frames


def write_pcap(path: Path, frames: list[bytes]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for number, frame in enumerate(frames):
        out.append(struct.pack("<IIII", 1 + number // 1000, number % 1000, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def test_the_default_budget_is_256_mib() -> None:
    assert TCP_BUFFER_BUDGET == 256 * MIB
    assert Analyzer().tcp_buffer == 256 * MIB


def test_buffered_bytes_never_exceed_the_budget_and_drops_are_counted() -> None:
    budget = 1 * MIB
    analyzer = Analyzer(tcp_buffer=budget)
    most = 0
    for number, data in enumerate(half_messages()):
        analyzer.feed(Frame(1.0 + number / 1e4, 1, data))
        held = sum(len(flow.buffer) for flow in analyzer.tcp_flows.values())
        assert held == analyzer.tcp_buffered
        most = max(most, held)
    assert most <= budget
    assert most > budget - 2 * SENT  # it was used, up to the last flow that fits
    stats = analyzer.stats
    total = FLOWS * SENT
    assert stats.tcp_flows_evicted >= (total - budget) // SENT
    assert stats.tcp_bytes_dropped + analyzer.tcp_buffered == total  # every byte accounted for
    assert stats.tcp_messages == 1  # the small message split in two still completes


def test_without_pressure_nothing_is_evicted() -> None:
    analyzer = Analyzer()
    for number, data in enumerate(half_messages()):
        analyzer.feed(Frame(1.0 + number / 1e4, 1, data))
    assert analyzer.stats.tcp_flows_evicted == 0
    assert analyzer.tcp_buffered == FLOWS * SENT


def test_pcap_tcp_buffer_option_and_summary(tmp_path: Path) -> None:
    capture = tmp_path / "half.pcap"
    write_pcap(capture, half_messages())
    assert sum(1 for _ in CaptureReader(capture)) == 2 * FLOWS + 2
    runner = CliRunner()
    result = runner.invoke(app, ["pcap", "--tcp-buffer", "1", str(capture)])
    assert result.exit_code == 0, result.output
    assert "flows evicted" in result.stdout and "--tcp-buffer" in result.stdout
    roomy = runner.invoke(app, ["pcap", str(capture)])
    assert roomy.exit_code == 0 and "flows evicted" not in roomy.stdout
    for bad in ("0", "-1", "100000"):
        refused = runner.invoke(app, ["pcap", "--tcp-buffer", bad, str(capture)])
        assert refused.exit_code == 2 and "--tcp-buffer" in refused.output
