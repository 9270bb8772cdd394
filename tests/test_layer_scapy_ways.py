"""The Scapy layer behaves as a Scapy user expects (issue 16): ``/`` stacks attributes with
the lengths right, ``value=`` works for every kind, wrong keywords name the fields,
``ls()`` shows names and hex, ChannelData shows what it carries (RFC 7983)."""

from __future__ import annotations

import contextlib
import io

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.rtp import RTP
from scapy.packet import ls

from stunscan import protocol as proto
from stunscan.layers import STUN, ChannelData, make_attribute
from stunscan.layers.attributes import KIND_CLASSES


def test_slash_appends_attributes_with_lengths_and_fingerprint_right() -> None:
    stacked = (
        STUN(type="Binding Request", transaction_id=bytes(12))
        / make_attribute("SOFTWARE", value="x")
        / make_attribute("FINGERPRINT")
    )
    listed = STUN(
        type="Binding Request",
        transaction_id=bytes(12),
        attributes=[make_attribute("SOFTWARE", value="x"), make_attribute("FINGERPRINT")],
    )
    wire = bytes(stacked)
    assert wire == bytes(listed)
    assert int.from_bytes(wire[2:4], "big") == len(wire) - 20 == 16
    again = STUN(wire)
    assert again.malformed_reasons() == [] and again.fingerprint_ok() is True
    assert [a.attribute_name for a in again.attributes] == ["SOFTWARE", "FINGERPRINT"]


def test_slash_under_ip_udp_and_with_a_list() -> None:
    attrs = [make_attribute("SOFTWARE", value="abc"), make_attribute("FINGERPRINT")]
    frame = IP(dst="127.0.0.1") / UDP(sport=3478, dport=3478) / STUN() / attrs[0] / attrs[1]
    message = IP(bytes(frame))[STUN]
    assert message.fingerprint_ok() is True and len(message.attributes) == 2
    from_list = STUN(transaction_id=bytes(12)) / attrs
    assert len(from_list.attributes) == 2 and STUN(bytes(from_list)).fingerprint_ok() is True


def test_slash_on_a_dissected_message_recomputes_its_length() -> None:
    probe = STUN(proto.REFERENCE_PROBE)
    grown = bytes(probe / make_attribute("SOFTWARE", value="abcd"))
    assert int.from_bytes(grown[2:4], "big") == 8 and STUN(grown).malformed_reasons() == []
    assert bytes(probe) == proto.REFERENCE_PROBE  # the original is left alone


def test_attribute_over_attribute_says_how_to_write_it() -> None:
    with pytest.raises(TypeError, match=r"STUN\(\.\.\.\)/attr1/attr2"):
        make_attribute("SOFTWARE", value="a") / make_attribute("FINGERPRINT")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REQUESTED-TRANSPORT", 17, "0019000411000000"),
        ("XOR-MAPPED-ADDRESS", ("192.0.2.1", 32853), "002000080001a147e112a643"),
        ("MAPPED-ADDRESS", "192.0.2.1:32853", "000100080001805 5c0000201".replace(" ", "")),
        ("ERROR-CODE", (401, "Unauthorized"), "0009001000000401556e617574686f72697a6564"),
        ("CHANNEL-NUMBER", 0x4001, "000c000440010000"),
        ("LIFETIME", 600, "000d000400000258"),
        ("SOFTWARE", "ab", "802200026162" + "0000"),
        ("CHANGE-REQUEST", 0x06, "0003000400000006"),
        ("REQUESTED-ADDRESS-FAMILY", 2, "0017000402000000"),
        ("EVEN-PORT", True, "0018000180000000"),
        ("DONT-FRAGMENT", None, "001a0000"),
        ("FINGERPRINT", 0x01020304, "8028000401020304"),
        ("MESSAGE-INTEGRITY", bytes(20), "00080014" + "00" * 20),
    ],
)
def test_value_keyword_works_for_every_kind(name: str, value: object, expected: str) -> None:
    assert bytes(make_attribute(name, value=value)).hex() == expected


def test_value_keyword_covers_every_kind_in_the_registry() -> None:
    samples = {
        "address": ("192.0.2.1", 1),
        "xor-address": ("2001:db8::1", 1),
        "string": "s",
        "bytes": b"b",
        "u32": 1,
        "u64": 1,
        "flags": 4,
        "empty": None,
        "error-code": 420,
        "attr-list": ["SOFTWARE"],
        "crc32": 1,
        "hmac-sha1": bytes(20),
        "hmac-sha256": bytes(32),
        "channel": 0x4000,
        "transport": 6,
        "family": 1,
        "even-port": 0,
        "counter": (1, 2),
        "addr-error": (1, 440, "x"),
        "icmp": (3, 1, 0),
        "pw-alg": 2,
        "pw-algs": [1, 2],
    }
    for code, spec in proto.ATTRIBUTES.items():
        attr = make_attribute(code, value=samples[spec.kind])
        assert isinstance(attr, KIND_CLASSES[spec.kind])
        again = STUN(bytes(STUN(attributes=[attr])))
        assert again.malformed_reasons() == [], (spec.name, again.malformed_reasons())


def test_wrong_keyword_names_the_fields() -> None:
    with pytest.raises(TypeError, match=r"REQUESTED-TRANSPORT has no field 'proto'.*protocol"):
        make_attribute("REQUESTED-TRANSPORT", proto=17)
    with pytest.raises(TypeError, match="XOR-MAPPED-ADDRESS value="):
        make_attribute("XOR-MAPPED-ADDRESS", value="not an address")


def _ls(obj: object) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        ls(obj)
    return out.getvalue()


def test_ls_shows_type_names_and_the_cookie_in_hex() -> None:
    text = _ls(STUN)
    assert "('Binding Request (0x0001)')" in text and "('0x2112a442')" in text
    answer = STUN(bytes(STUN(type="Binding Success Response")))
    text = _ls(answer)
    assert "Binding Success Response (0x0101)" in text and "554869826" not in text
    assert answer.type == 0x0101 and str(answer.type) == "257"  # still an int
    assert f"{answer.magic_cookie:08x}" == "2112a442"


def _shown(packet: ChannelData) -> str:
    return str(packet.show2(dump=True))


def test_channeldata_shows_the_stun_message_it_carries() -> None:
    packet = ChannelData(channel=0x4001, data=proto.REFERENCE_PROBE)
    text = _shown(packet)
    assert "\\data as STUN\\" in text and "Binding Request (0x0001)" in text
    assert "[STUN Binding Request]" in packet.summary()
    assert packet.data == proto.REFERENCE_PROBE  # the data stays bytes


def test_channeldata_shows_rtp_rtcp_dtls_by_the_first_byte() -> None:
    rtp = ChannelData(data=bytes(RTP(payload_type=0, sequence=5) / b"abcd"))
    assert "\\data as RTP\\" in _shown(rtp) and "sequence  = 5" in _shown(rtp)
    rtcp = ChannelData(data=bytes.fromhex("80c80006") + bytes(24))
    assert "\\data as RTCP\\" in _shown(rtcp) and "Sender report" in _shown(rtcp)
    dtls = ChannelData(data=bytes.fromhex("16fefd0000000000000000000201ff"))
    assert "\\data as DTLS record\\" in _shown(dtls) and "handshake" in _shown(dtls)
    other = ChannelData(data=b"hello")
    assert "\\data as" not in _shown(other) and "68656c6c6f" in _shown(other)
    truncated = ChannelData(data=b"\x80\x00")  # too short for RTP: hex, no error
    assert "\\data as" not in _shown(truncated)
