"""TURN ChannelData (RFC 8656 12.4): the 4-byte framing TURN uses for relayed data.

A ChannelData message shares the STUN ports and starts with a channel number in
0x4000-0x7FFF (top bits 01), which is how :func:`stunscan.layers.stun.message_class_for`
tells it from a STUN message. What it carries is shown the way RFC 7983 demultiplexes by
the first byte: STUN (0-3), DTLS (20-63), RTP or RTCP (128-191), hex otherwise; the data
itself stays bytes (``.data``), the dissection is :attr:`ChannelData.inner`.
"""

from __future__ import annotations

from typing import Any

from scapy.config import conf
from scapy.fields import (
    ByteEnumField,
    FieldLenField,
    ShortField,
    XShortField,
    XStrLenField,
)
from scapy.packet import Packet

DTLS_CONTENT_TYPES = {
    20: "change_cipher_spec",
    21: "alert",
    22: "handshake",
    23: "application_data",
    24: "heartbeat",
    25: "tls12_cid",
}


class DTLSRecord(Packet):
    """A DTLS record header (RFC 6347 4.1) and its (encrypted or handshake) fragment."""

    name = "DTLS record"
    fields_desc = [
        ByteEnumField("content_type", 22, DTLS_CONTENT_TYPES),
        XShortField("version", 0xFEFD),
        ShortField("epoch", 0),
        XStrLenField("sequence", b"\x00" * 6, length_from=lambda p: 6),
        FieldLenField("length", None, length_of="fragment"),
        XStrLenField("fragment", b"", length_from=lambda p: p.length),
    ]

    def extract_padding(self, s: bytes) -> tuple[bytes, bytes]:
        return b"", s


def demultiplex(data: bytes) -> Packet:
    """The layer for relayed bytes by their first byte (RFC 7983 7), Raw when unknown."""
    if not data:
        return conf.raw_layer(data)
    first = data[0]
    if first <= 3:
        from .stun import STUN  # the message layers import this module

        return STUN(data)
    if 20 <= first <= 63 and len(data) >= 13:
        return DTLSRecord(data)
    if 128 <= first <= 191 and len(data) >= 8:
        if 192 <= data[1] <= 223:  # RTCP packet types (RFC 5761 4)
            from scapy.contrib.rtcp import RTCP

            return RTCP(data)
        from scapy.layers.rtp import RTP

        return RTP(data)
    return conf.raw_layer(data)


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

    @property
    def inner(self) -> Packet:
        """The data dissected as RFC 7983 says (STUN, DTLS, RTP, RTCP), else Raw."""
        return demultiplex(bytes(self.data))

    def _show_or_dump(
        self,
        dump: bool = False,
        indent: int = 3,
        lvl: str = "",
        label_lvl: str = "",
        first_call: bool = True,
    ) -> Any:
        """As Scapy shows any layer, then the data dissected below it."""
        text = super()._show_or_dump(True, indent, lvl, label_lvl, first_call)
        inner = self.inner
        if not isinstance(inner, conf.raw_layer):
            text += f"{label_lvl}  \\data as {inner.name}\\\n"
            text += inner._show_or_dump(True, indent, lvl + "  ", label_lvl + "  ", True)
        if dump:
            return text
        print(text)
        return None

    def malformed_reasons(self) -> list[str]:
        reasons = []
        if self.length is not None and self.length > len(self.data):
            reasons.append(f"length field says {self.length} bytes, {len(self.data)} present")
        return reasons

    @property
    def malformed(self) -> bool:
        return bool(self.malformed_reasons())

    def mysummary(self) -> str:
        inner = self.inner
        what = "" if isinstance(inner, conf.raw_layer) else f" [{inner.summary()}]"
        return f"TURN ChannelData 0x{self.channel:04x} {len(self.data)} bytes{what}"
