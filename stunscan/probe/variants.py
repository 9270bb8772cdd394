"""The requests ``stunscan probe`` can send, one per question a researcher asks a server.

Each variant builds its request bytes with ``protocol.encode_message`` (no Scapy: it would
be most of a probe's run time); ``tests/test_probe_cli.py`` checks that the Scapy layer
builds the same bytes from the same fields. ``nat`` is not one request but RFC 5780's
behaviour discovery (``stunscan.probe.nat``), listed here so that it is chosen like the rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from stunscan import __version__
from stunscan import protocol as proto

BINDING_REQUEST = proto.message_type(0x001, proto.MessageClass.REQUEST)
ALLOCATE_REQUEST = proto.message_type(0x003, proto.MessageClass.REQUEST)
CHANGE_IP, CHANGE_PORT = 0x04, 0x02
SOFTWARE = f"stunscan {__version__}"
PADDING_SIZE = 512
"""Bytes of PADDING (RFC 5780 7.6): enough to see whether the server pads its answer too."""
UDP = 17


@dataclass(frozen=True, slots=True)
class Variant:
    """One kind of request: its name, what it asks, and how to build it."""

    name: str
    question: str
    build: Callable[[], bytes]
    udp_only: bool = False
    """Meaningless over TCP (RFC 5780 forbids CHANGE-REQUEST and PADDING there)."""


def new_id() -> bytes:
    return os.urandom(12)


def binding(*attributes: tuple[int, bytes], fingerprint: bool = False) -> bytes:
    return proto.encode_message(BINDING_REQUEST, new_id(), attributes, fingerprint_last=fingerprint)


def change_request(flags: int) -> bytes:
    """A Binding asking for the answer from another address and/or port (RFC 5780 7.2)."""
    return binding((proto.CHANGE_REQUEST, flags.to_bytes(4, "big")))


def _classic() -> bytes:
    return proto.encode_message(BINDING_REQUEST, os.urandom(16))


def _allocate() -> bytes:
    transport = (proto.parse_attribute_code("REQUESTED-TRANSPORT"), bytes((UDP, 0, 0, 0)))
    return proto.encode_message(ALLOCATE_REQUEST, new_id(), [transport])


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "shadowserver",
            "the report's exact 20-byte probe, transaction ID all zeros",
            lambda: proto.REFERENCE_PROBE,
        ),
        Variant("binding", "a plain Binding request with a random ID", binding),
        Variant("classic", "RFC 3489 Binding: no magic cookie, 128-bit ID", _classic),
        Variant(
            "software",
            "a Binding carrying SOFTWARE: does the server echo or log it?",
            lambda: binding((proto.SOFTWARE, SOFTWARE.encode())),
        ),
        Variant(
            "fingerprint",
            "a Binding carrying FINGERPRINT: servers must answer with one (RFC 8489 7.3)",
            lambda: binding(fingerprint=True),
        ),
        Variant(
            "change-request",
            "CHANGE-REQUEST (change IP and port): does the answer come from elsewhere?",
            lambda: change_request(CHANGE_IP | CHANGE_PORT),
            udp_only=True,
        ),
        Variant(
            "padding",
            f"PADDING of {PADDING_SIZE} bytes (RFC 5780): is the answer padded as well?",
            lambda: binding((proto.PADDING, bytes(PADDING_SIZE))),
            udp_only=True,
        ),
        Variant(
            "allocate",
            "TURN Allocate without credentials: a 401 with REALM and NONCE means TURN",
            _allocate,
        ),
    )
}
NAT = "nat"
"""RFC 5780 NAT behaviour discovery through OTHER-ADDRESS (several requests)."""
NAMES = (*VARIANTS, NAT)
DEFAULT = ("binding",)
