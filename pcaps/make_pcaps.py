"""Make the project's own captures from real STUN servers on loopback.

Run as root from the project folder: ``python pcaps/make_pcaps.py``. It starts coturn and
Vovida stund on loopback (tests/lab_servers.py), records loopback traffic to their ports
with tcpdump while it sends them requests built with the Scapy layer, and writes the
files pcaps/README.md describes. Nothing leaves loopback.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from lab_servers import LabServer, coturn, exchange_tcp, exchange_udp, stund  # noqa: E402

from stunscan import protocol as proto  # noqa: E402
from stunscan.layers import STUN, STUNClassic, make_attribute  # noqa: E402

STUN_PORT = 3478
"""The captures use the standard port, as real traffic does; it must be free on loopback."""


@contextlib.contextmanager
def recording(path: Path, servers: list[LabServer], nano: bool = False) -> Iterator[None]:
    """tcpdump on lo, only the servers' ports, for the length of the block."""
    ports = sorted({p for s in servers for p in (s.port, s.alternate_port)})
    capture_filter = " or ".join(f"port {port}" for port in ports)
    precision = ["--time-stamp-precision=nano"] if nano else []
    command = ["tcpdump", "-i", "lo", "-U", "--immediate-mode", "-Z", "root", "-n", *precision]
    command += ["-w", str(path), capture_filter]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    process.stderr.readline()  # "listening on lo ...": it is capturing now
    try:
        yield
        time.sleep(0.3)
    finally:
        process.terminate()
        process.wait(timeout=5)


def shadowserver_and_binding(server: LabServer) -> None:
    exchange_udp(proto.REFERENCE_PROBE, server.address)  # the report's own probe
    exchange_udp(bytes(STUN(type="Binding Request")), server.address)
    signed = STUN(
        type="Binding Request",
        attributes=[make_attribute("SOFTWARE", value="stunscan"), make_attribute("FINGERPRINT")],
    )
    exchange_udp(bytes(signed), server.address)
    exchange_udp(bytes(STUNClassic(type="Binding Request")), server.address)


def ipv6_binding(server: LabServer) -> None:
    for _ in range(2):
        exchange_udp(bytes(STUN(type="Binding Request")), ("::1", server.port))


def tcp_bindings(server: LabServer) -> None:
    exchange_tcp(bytes(STUN(type="Binding Request")), server.address)
    # two requests in one segment: the server answers both on the stream
    two = bytes(STUN(type="Binding Request")) + bytes(
        STUN(type="Binding Request", attributes=[make_attribute("FINGERPRINT")])
    )
    with socket.create_connection(server.address, timeout=1.0) as sock:
        sock.sendall(two)
        deadline = time.monotonic() + 1.0
        received = b""
        while time.monotonic() < deadline and received.count(b"\x21\x12\xa4\x42") < 2:
            received += sock.recv(65535)


def allocate(server: LabServer) -> None:
    key = proto.long_term_key("alice", "example.org", "secret")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.bind(("127.0.0.1", 0))
        request = STUN(type="Allocate Request", attributes=[make_attribute("REQUESTED-TRANSPORT")])
        sock.sendto(bytes(request), server.address)
        nonce = STUN(sock.recv(65535)).get_attribute("NONCE").decoded
        credentials = [
            make_attribute("USERNAME", value="alice"),
            make_attribute("REALM", value="example.org"),
            make_attribute("NONCE", value=nonce),
        ]
        signed = STUN(
            type="Allocate Request",
            attributes=[
                make_attribute("REQUESTED-TRANSPORT"),
                *credentials,
                make_attribute("MESSAGE-INTEGRITY", key=key),
                make_attribute("FINGERPRINT"),
            ],
        )
        sock.sendto(bytes(signed), server.address)
        sock.recv(65535)
        release = STUN(
            type="Refresh Request",
            attributes=[
                make_attribute("LIFETIME", value=0),
                *credentials,
                make_attribute("MESSAGE-INTEGRITY", key=key),
            ],
        )
        sock.sendto(bytes(release), server.address)
        sock.recv(65535)


def classic_and_change_request(server: LabServer) -> None:
    exchange_udp(bytes(STUNClassic(type="Binding Request")), server.address)
    exchange_udp(bytes(STUN(type="Binding Request")), server.address)
    for change in ({"change_port": 1}, {"change_ip": 1, "change_port": 1}):
        request = STUNClassic(
            type="Binding Request", attributes=[make_attribute("CHANGE-REQUEST", **change)]
        )
        exchange_udp(bytes(request), server.address)


def main() -> None:
    if shutil.which("tcpdump") is None:
        raise SystemExit("tcpdump is needed (apt-get install tcpdump)")
    Starter = Callable[[], contextlib.AbstractContextManager[LabServer]]
    jobs: list[tuple[str, Starter, Callable[[LabServer], None]]] = [
        ("coturn-udp.pcap", lambda: coturn(port=STUN_PORT), shadowserver_and_binding),
        ("coturn-ipv6.pcap", lambda: coturn(port=STUN_PORT), ipv6_binding),
        ("coturn-tcp.pcap", lambda: coturn(port=STUN_PORT), tcp_bindings),
        ("turn-allocate-401.pcap", lambda: coturn(auth=True, ipv6=False, port=STUN_PORT), allocate),
        ("stund-classic.pcap", lambda: stund(port=STUN_PORT), classic_and_change_request),
    ]
    for name, start, exchange in jobs:
        with start() as server, recording(HERE / name, [server], nano="ipv6" in name):
            exchange(server)
        print(f"wrote {name}")
    # one pcapng with nanosecond stamps, as Wireshark writes them
    pcap, pcapng = HERE / "coturn-ipv6.pcap", HERE / "coturn-ipv6.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(pcap), str(pcapng)], check=True)
    pcap.unlink()
    print("wrote coturn-ipv6.pcapng")


if __name__ == "__main__":
    main()
