"""TURN ChannelData (RFC 8656 12.4): the 4-byte framing TURN uses for relayed data.

A ChannelData message shares the STUN ports and starts with a channel number in
0x4000-0x7FFF (top bits 01), which is how :func:`stunscan.layers.stun.message_class_for`
tells it from a STUN message.
"""

from __future__ import annotations

from scapy.fields import FieldLenField, XShortField, XStrLenField
from scapy.packet import Packet


class ChannelData(Packet):
    """Channel number, data length, application data; any padding follows as Padding."""

    name = "TURN ChannelData"
    fields_desc = [
        XShortField("channel", 0x4000),
        FieldLenField("length", None, length_of="data"),
        XStrLenField("data", b"", length_from=lambda p: p.length),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s

    def malformed_reasons(self) -> list[str]:
        reasons = []
        if self.length is not None and self.length > len(self.data):
            reasons.append(f"length field says {self.length} bytes, {len(self.data)} present")
        return reasons

    @property
    def malformed(self) -> bool:
        return bool(self.malformed_reasons())

    def mysummary(self) -> str:
        return f"TURN ChannelData 0x{self.channel:04x} {len(self.data)} bytes"
