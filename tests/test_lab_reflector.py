"""benchmarks/lab_reflector.py against real probes: what it answers, byte for byte, and what not.

The receive benchmark trusts the reflector's answers to be what a STUN server sends, so this
checks them from the scanner's side of a lab (tests/scan_lab.py): a prober in the scanner's
namespace (this file, run as ``python tests/test_lab_reflector.py probe``) sends datagrams
from ordinary UDP sockets, IPv4 and IPv6, and reports what its sockets received and every
frame scan0 received. Checked: each Binding request gets one answer, from the address and
port probed, whose STUN payload is byte for byte tests/lab_responders.py's ``answer`` with
SOFTWARE ``lab reflector``; the frames' IP and UDP checksums are recomputed with Scapy (the
kernel would also drop a datagram with a bad UDP checksum before the socket saw it, but
that is not relied on); TTL, DF, ID and hop limit; no ICMP reaches the scanner. Datagrams
that are not Binding requests get nothing; ``--limit`` and ``--lifetime`` stop it.
Needs root (namespaces, AF_PACKET).
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_responders import answer
from scan_lab import LAB_V4, LAB_V6, SCANNER_V4, SCANNER_V6, Lab, scan_lab

from stunscan import protocol as proto

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import lab_reflector
from lab_reflector import Running, icmp_unreachables, silence

V4, V6 = "198.18.0.0/24", "2001:db8:2::/64"
PORTS = (3478, 3479, 3480, 3481)
BINDING = proto.message_type(0x001, proto.MessageClass.REQUEST)
PACKET_OUTGOING = 4
SO_RCVBUFFORCE = 33
ANSWER_WAIT = 3.0
"""Seconds the prober waits for the answers it expects (they take milliseconds)."""
QUIET = 0.3
"""Seconds it then keeps listening, for answers it should not get."""


def request(msg_type: int = BINDING, attributes: list[tuple[int, bytes]] | None = None) -> bytes:
    return proto.encode_message(msg_type, os.urandom(12), attributes or [])


def datagram(address: str, port: int, payload: bytes, socket_number: int = 0) -> dict[str, Any]:
    """One datagram for the prober; ``socket_number`` picks the UDP socket (source port)
    it goes from; a negative one is a socket with an IP option (IPv4 header of 24 bytes)."""
    return {"address": address, "port": port, "payload": payload.hex(), "socket": socket_number}


# ------------------------------------------------------------------ the prober (scanner side)


def _socket(address: str, number: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if number < 0:  # two NOPs, an end of options list and padding
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, b"\x01\x01\x00\x00")
    sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
    return sock


def probe_main() -> None:
    """Send the datagrams read as JSON from stdin, print what came back, as JSON."""
    plan = json.load(sys.stdin)
    capture = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    capture.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)  # a burst of answers
    capture.bind(("scan0", 0))
    sockets: dict[tuple[str, int], socket.socket] = {}
    for item in plan["datagrams"]:
        family = "6" if ":" in item["address"] else "4"
        key = (family, item["socket"])
        if key not in sockets:
            sockets[key] = _socket(item["address"], item["socket"])
        target = (item["address"], item["port"])
        sockets[key].sendto(bytes.fromhex(item["payload"]), target)
    received, frames = [], []
    everything = [capture, *sockets.values()]
    deadline = time.monotonic() + ANSWER_WAIT
    while time.monotonic() < deadline:
        ready, _, _ = select.select(everything, [], [], 0.05)
        for sock in ready:
            if sock is capture:
                frame, where = capture.recvfrom(65536)
                if where[2] != PACKET_OUTGOING:
                    frames.append(frame.hex())
                continue
            data, source = sock.recvfrom(65536)
            local = sock.getsockname()[1]
            received.append([local, source[0], source[1], data.hex()])
        if len(received) >= plan["expect"]:
            deadline = min(deadline, time.monotonic() + QUIET)
    print(json.dumps({"received": received, "frames": frames}))


# ------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with scan_lab(servers=False, routed=(V4, V6)) as running:
        silence(running, (V4, V6))
        # the gateway's MAC known: the first datagrams need not wait for ARP and ND
        lab_mac = mac(running.lab, "lab0")
        for gateway in (LAB_V4, LAB_V6):
            subprocess.run(["ip", "-n", running.scanner, "neigh", "replace", gateway, "lladdr",
                            lab_mac, "dev", "scan0", "nud", "permanent"], check=True)  # fmt: skip
        yield running


def probe(lab: Lab, datagrams: list[dict[str, Any]], expect: int) -> dict[str, Any]:
    command = lab.in_scanner(sys.executable, str(Path(__file__).resolve()), "probe")
    plan = json.dumps({"datagrams": datagrams, "expect": expect})
    result = subprocess.run(command, input=plan, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def mac(namespace: str, device: str) -> str:
    """The MAC address of ``device`` in ``namespace``."""
    command = ["ip", "netns", "exec", namespace, "cat", f"/sys/class/net/{device}/address"]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def check_frame(frame: bytes, scanner_mac: str, lab_mac: str) -> None:
    """An answer frame as a server's kernel would send it, checksums recomputed by Scapy."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    packet = Ether(frame)
    assert (packet.src, packet.dst) == (lab_mac, scanner_mac)
    again = Ether(frame)
    del again[UDP].chksum
    if IP in packet:
        assert (packet[IP].ttl, packet[IP].id, str(packet[IP].flags)) == (64, 0, "DF")
        assert packet[IP].ihl == 5
        del again[IP].chksum
    else:
        assert packet[IPv6].hlim == 64 and packet[IPv6].nh == 17
    rebuilt = Ether(bytes(again))
    assert rebuilt[UDP].chksum == packet[UDP].chksum != 0
    if IP in packet:
        assert rebuilt[IP].chksum == packet[IP].chksum


def kind_of(frame: bytes) -> str:
    """udp, unreachable (ICMP or ICMPv6 destination unreachable) or other (ARP, ND...)."""
    from scapy.layers.inet import ICMP, UDP
    from scapy.layers.inet6 import ICMPv6DestUnreach
    from scapy.layers.l2 import Ether

    packet = Ether(frame)
    if ICMPv6DestUnreach in packet or (ICMP in packet and packet[ICMP].type == 3):
        return "unreachable"
    return "udp" if UDP in packet else "other"


def test_answers_every_binding_request_like_a_server(lab: Lab) -> None:
    requests: dict[bytes, dict[str, Any]] = {}
    datagrams = []
    for number in range(300):
        address = f"198.18.0.{1 + number}" if number < 200 else f"2001:db8:2::{number:x}"
        attributes = [(proto.SOFTWARE, b"prober")] if number % 3 == 0 else []
        if number % 5 == 0:
            attributes.append((proto.PADDING, bytes(8)))
        payload = request(attributes=attributes)
        item = datagram(address, PORTS[number % 4], payload, number % 3)
        requests[payload[8:20]] = item
        datagrams.append(item)
    unreachables = icmp_unreachables(lab.scanner)
    reflector = Running(lab, "reflector")
    seen = probe(lab, datagrams, len(datagrams))
    report = reflector.result()
    assert report["answers"] == len(datagrams) and report["dropped"] == 0
    assert report["ignored"] == 0
    assert icmp_unreachables(lab.scanner) == unreachables
    answered = {}
    for local, source, source_port, data in seen["received"]:
        payload = bytes.fromhex(data)
        item = requests[payload[8:20]]
        assert (source, source_port) == (item["address"], item["port"])
        own = SCANNER_V6 if ":" in source else SCANNER_V4
        sent = bytes.fromhex(item["payload"])
        assert payload == answer(sent, (own, local), software=lab_reflector.SOFTWARE)
        answered[payload[8:20]] = local
    assert len(answered) == len(seen["received"]) == len(requests)
    kinds = [(kind_of(frame), frame) for frame in map(bytes.fromhex, seen["frames"])]
    answers = [frame for kind, frame in kinds if kind == "udp"]
    assert len(answers) == len(requests)
    assert "unreachable" not in {kind for kind, _frame in kinds}
    scanner_mac, lab_mac = mac(lab.scanner, "scan0"), mac(lab.lab, "lab0")
    for frame in answers:
        check_frame(frame, scanner_mac, lab_mac)


def test_ignores_what_is_not_a_binding_request(lab: Lab) -> None:
    address = "198.18.0.7"
    valid = request()
    short = request()[:19]
    long_length = bytearray(request())
    long_length[3] = 4  # the length field claims 4 bytes that are not there
    ignored = [
        os.urandom(40),  # not STUN
        request(proto.message_type(0x001, proto.MessageClass.INDICATION)),
        request(proto.message_type(0x001, proto.MessageClass.SUCCESS_RESPONSE)),
        request(proto.message_type(0x003, proto.MessageClass.REQUEST)),  # Allocate
        bytes.fromhex("00010000") + os.urandom(16),  # RFC 3489 Binding: no magic cookie
        short,
        bytes(long_length),
        request() + b"\x00\x00",  # two bytes more than the length says
    ]
    datagrams = [datagram(address, 3478, payload) for payload in ignored]
    datagrams += [datagram("2001:db8:2::7", 3479, payload) for payload in ignored]
    datagrams.append(datagram(address, 3480, request(), -1))  # an IPv4 option: IHL 6
    big = request(attributes=[(proto.PADDING, bytes(2000))])  # fragments
    datagrams.append(datagram(address, 3481, big))
    outside = [datagram(address, port, request()) for port in (3477, 3482)]  # BPF drops
    datagrams += [*outside, datagram(address, 3478, valid)]
    reflector = Running(lab, "reflector-ignores")
    seen = probe(lab, datagrams, 1)
    report = reflector.result()
    assert [bytes.fromhex(r[3])[8:20] for r in seen["received"]] == [valid[8:20]]
    assert report["answers"] == 1
    # what the filter passed (all but the ports outside and the fragment's rest): ignored
    assert report["ignored"] == 2 * len(ignored) + 2


def test_stops_at_its_limit(lab: Lab) -> None:
    reflector = Running(lab, "reflector-limit", limit=40)
    datagrams = [datagram(f"198.18.0.{n}", 3478, request()) for n in range(1, 101)]
    seen = probe(lab, datagrams, 40)
    assert len(seen["received"]) == 40
    reflector.process.wait(timeout=5)  # it ended by itself
    assert reflector.process.returncode == 0
    assert reflector.result()["answers"] == 40


def test_stops_at_its_lifetime(lab: Lab) -> None:
    started = time.monotonic()
    reflector = Running(lab, "reflector-lifetime", lifetime=0.5)
    reflector.process.wait(timeout=5)
    assert reflector.process.returncode == 0
    assert time.monotonic() - started < 5
    assert reflector.result()["answers"] == 0


if __name__ == "__main__":
    if sys.argv[1:] == ["probe"]:
        probe_main()
