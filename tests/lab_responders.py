"""Misbehaving STUN servers for the scan lab, run as a process inside the lab namespace.

``python tests/lab_responders.py MODE ADDRESS [OTHER]``:

- ``forged``: answers every Binding on ADDRESS:3478 with a random transaction ID;
- ``moved``: answers correctly, but from ADDRESS:3479 (a server behind a port-changing NAT);
- ``spoof``: answers probes to ADDRESS correctly, but from OTHER:3478 (what a spoofer who
  saw the probe could do; the keyed ID is bound to the address, so the scan rejects it).

(The receive benchmark's responder, answering for a whole range at some 200,000 answers a
second, is benchmarks/lab_reflector.py.)

Each answer is a real Binding success response (XOR-MAPPED-ADDRESS, SOFTWARE). Every mode is
bounded: it answers at most ``--limit`` datagrams and exits after ``--lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import os
import socket
import time

from stunscan import protocol as proto

SUCCESS = proto.message_type(0x001, proto.MessageClass.SUCCESS_RESPONSE)
PORT = 3478


def answer(
    request: bytes,
    client: tuple[str, int],
    transaction_id: bytes | None = None,
    software: bytes = b"lab responder",
) -> bytes:
    """A Binding success response to ``request`` as seen from ``client`` (SOFTWARE
    ``software``: benchmarks/lab_reflector.py answers with the same bytes but its name)."""
    ident = request[8:20] if transaction_id is None else transaction_id
    key = proto.MAGIC_COOKIE_BYTES + ident
    attributes = [
        (proto.XOR_MAPPED_ADDRESS, proto.encode_xor_address(client[0], client[1], key)),
        (proto.SOFTWARE, software),
    ]
    return proto.encode_message(SUCCESS, ident, attributes)


def _udp(address: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address, port))
    return sock


def serve(mode: str, address: str, other: str | None, limit: int, lifetime: float) -> None:
    listen = _udp(address, PORT)
    listen.settimeout(0.2)
    reply = listen
    if mode == "moved":
        reply = _udp(address, PORT + 1)
    elif mode == "spoof":
        assert other is not None
        reply = _udp(other, PORT)
    deadline = time.monotonic() + lifetime
    answered = 0
    while answered < limit and time.monotonic() < deadline:
        try:
            data, client = listen.recvfrom(2048)
        except TimeoutError:
            continue
        if len(data) < 20 or not proto.looks_like_stun(data):
            continue
        forged = os.urandom(12) if mode == "forged" else None
        reply.sendto(answer(data, client[:2], forged), client)
        answered += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("forged", "moved", "spoof"))
    parser.add_argument("address", nargs="?", default="")
    parser.add_argument("other", nargs="?")
    parser.add_argument("--limit", type=int, default=10_000)
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    serve(args.mode, args.address, args.other, args.limit, args.lifetime)


if __name__ == "__main__":
    main()
