"""Write a large capture of mixed STUN traffic, fast, for the pcap benchmark.

Templates are built once with the Scapy layer (Binding request/response over UDP IPv4 and
IPv6, classic RFC 3489, an Allocate -> 401 with REALM and NONCE, TURN ChannelData, STUN
over TCP) plus non-STUN UDP and TCP; each packet then gets its own addresses and
transaction ID by patching bytes, so a million packets take seconds, not minutes.
Addresses come from the benchmark range 198.18.0.0/15 and 2001:db8::/32.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import sys
from pathlib import Path

from scapy.layers.l2 import Ether

from stunscan import protocol as proto
from stunscan.layers import STUN, STUNClassic, make_attribute

SERVERS = 4096
ETHER = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x0800))
ETHER6 = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x86DD))


def _v4(n: int) -> str:
    return f"198.18.{(n >> 8) & 0xFF}.{n & 0xFF}"


def _v6(n: int) -> str:
    return f"2001:db8::{n:x}"


def _response(tid: bytes, client: str, port: int, classic: bool = False) -> bytes:
    cls = STUNClassic if classic else STUN
    attrs = [
        make_attribute("MAPPED-ADDRESS", address=client, port=port),
        make_attribute("XOR-MAPPED-ADDRESS", address=client, port=port),
        make_attribute("SOFTWARE", value="bench server 1.0"),
    ]
    if not classic:
        attrs.append(make_attribute("FINGERPRINT"))
    return bytes(cls(type="Binding Success Response", transaction_id=tid, attributes=attrs))


class Templates:
    """Wire templates with the offsets to patch: addresses, ports and transaction IDs."""

    def __init__(self) -> None:
        tid = bytes(12)
        self.request = bytes(STUN(type="Binding Request", transaction_id=tid))
        self.response = _response(tid, "198.18.255.1", 40000)
        self.response6 = _response(tid, "2001:db8::ffff", 40000)
        self.classic_request = bytes(STUNClassic(type="Binding Request", transaction_id=bytes(16)))
        self.classic_response = _response(bytes(16), "198.18.255.1", 40000, classic=True)
        self.allocate = bytes(
            STUN(
                type="Allocate Request",
                transaction_id=tid,
                attributes=[make_attribute("REQUESTED-TRANSPORT")],
            )
        )
        self.unauthorized = bytes(
            STUN(
                type="Allocate Error Response",
                transaction_id=tid,
                attributes=[
                    make_attribute("ERROR-CODE", error_class=4, number=1, reason="Unauthorized"),
                    make_attribute("REALM", value="bench.example"),
                    make_attribute("NONCE", value="0123456789abcdef0123456789abcdef"),
                    make_attribute("SOFTWARE", value="bench turn 2.0"),
                    make_attribute("FINGERPRINT"),
                ],
            )
        )
        self.channel = b"\x40\x00\x00\x40" + bytes(64)
        self.dns = bytes(40)


def _ip4(src: str, dst: str, protocol: int, body: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(body),
        0,
        0,
        64,
        protocol,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return ETHER + header + body


def _udp4(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    return _ip4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def _udp6(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64)
    addresses = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    return ETHER6 + header + addresses + udp


def _tcp4(src: str, sport: int, dst: str, dport: int, seq: int, payload: bytes) -> bytes:
    # PSH+ACK+FIN: one message each way on a short connection, as STUN over TCP mostly is
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x19, 65535, 0, 0) + payload
    return _ip4(src, dst, 6, tcp)


def _with_tid(template: bytes, tid: bytes) -> bytes:
    """The template with another transaction ID, its FINGERPRINT recomputed if it ends in one."""
    message = template[: 20 - len(tid)] + tid + template[20:]
    if message[-8:-6] == b"\x80\x28":
        crc = proto.fingerprint(proto.covered_prefix(message, len(message) - 8, 4))
        message = message[:-4] + struct.pack("!I", crc)
    return message


def generate(path: Path, packets: int, seed: int = 1) -> None:
    """Write ``packets`` frames: about 70% STUN, the rest ChannelData and other traffic."""
    rng = random.Random(seed)
    t = Templates()
    records = []
    count = 0
    when = 1_700_000_000_000_000  # microseconds: 10,000 packets a second, a busy server
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        while count < packets:
            n = rng.randrange(SERVERS)
            server, client = _v4(n), _v4(SERVERS + rng.randrange(20000))
            tid = os.urandom(12)
            cport = 1024 + rng.randrange(60000)
            choice = rng.random()
            if choice < 0.35:
                pair = [
                    _udp4(client, cport, server, 3478, _with_tid(t.request, tid)),
                    _udp4(server, 3478, client, cport, _with_tid(t.response, tid)),
                ]
            elif choice < 0.45:
                s6, c6 = _v6(n), _v6(SERVERS + rng.randrange(20000))
                pair = [
                    _udp6(c6, cport, s6, 3478, _with_tid(t.request, tid)),
                    _udp6(s6, 3478, c6, cport, _with_tid(t.response6, tid)),
                ]
            elif choice < 0.50:
                ctid = os.urandom(16)
                pair = [
                    _udp4(client, cport, server, 3478, _with_tid(t.classic_request, ctid)),
                    _udp4(
                        server,
                        3478,
                        client,
                        cport,
                        _with_tid(t.classic_response, ctid),
                    ),
                ]
            elif choice < 0.60:
                pair = [
                    _udp4(client, cport, server, 3478, _with_tid(t.allocate, tid)),
                    _udp4(server, 3478, client, cport, _with_tid(t.unauthorized, tid)),
                ]
            elif choice < 0.65:
                seq = rng.randrange(1 << 31)
                pair = [
                    _tcp4(client, cport, server, 3478, seq, _with_tid(t.request, tid)),
                    _tcp4(server, 3478, client, cport, seq, _with_tid(t.response, tid)),
                ]
            elif choice < 0.80:
                pair = [_udp4(client, cport, server, 3478, t.channel)]
            else:
                pair = [
                    _udp4(client, cport, server, 53, t.dns),
                    _udp4(server, 53, client, cport, t.dns),
                ]
            for frame in pair:
                when += 100
                seconds, micros = divmod(when, 1_000_000)
                records.append(
                    struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
                )
                count += 1
            if len(records) >= 10000:
                out.write(b"".join(records))
                records.clear()
        out.write(b"".join(records))


if __name__ == "__main__":
    generate(Path(sys.argv[1]), int(sys.argv[2]))
