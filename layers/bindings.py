"""Bind the STUN layers to UDP and TCP port 3478, and a heuristic for other ports.

UDP 3478 carries one message per datagram (:class:`STUN` picks STUN, classic or
ChannelData itself); TCP 3478 carries a stream (:class:`STUNStream`). On other ports the
heuristic looks only at payloads no other Scapy layer claimed (they would otherwise be Raw)
and asks for the full RFC 8489 test (top bits, cookie, exact length) or the strict classic
test, so unrelated traffic pays at most a few byte comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scapy.config import conf
from scapy.layers.inet import TCP, UDP
from scapy.packet import Packet, bind_layers

from stunscan import protocol as proto

from .stun import STUN, STUNStream

STUN_PORT = 3478

bind_layers(UDP, STUN, dport=STUN_PORT)
bind_layers(UDP, STUN, sport=STUN_PORT)
bind_layers(TCP, STUNStream, dport=STUN_PORT)
bind_layers(TCP, STUNStream, sport=STUN_PORT)

_original_guess: dict[type[Packet], Callable[[Packet, bytes], Any]] = {}


def _udp_heuristic(payload: bytes) -> bool:
    return proto.looks_like_stun(payload) or proto.looks_like_classic_stun(payload)


def _tcp_heuristic(payload: bytes) -> bool:
    return (
        proto.looks_like_stun(payload, exact=False)
        or proto.looks_like_rfc4571_stun(payload)
        or proto.looks_like_classic_stun(payload, exact=False)
    )


_HEURISTICS: dict[type[Packet], tuple[Callable[[bytes], bool], type[Packet]]] = {
    UDP: (_udp_heuristic, STUN),
    TCP: (_tcp_heuristic, STUNStream),
}


def enable_heuristics() -> None:
    """Dissect STUN on any UDP/TCP port when the payload passes the heuristic (default on)."""
    for layer, (test, stun_class) in _HEURISTICS.items():
        if layer in _original_guess:
            continue
        original = layer.guess_payload_class
        _original_guess[layer] = original

        def guess(self: Packet, payload: bytes, _orig=original, _test=test, _cls=stun_class) -> Any:
            cls = _orig(self, payload)
            if cls is conf.raw_layer and _test(payload):
                return _cls
            return cls

        layer.guess_payload_class = guess  # type: ignore[method-assign,assignment]


def disable_heuristics() -> None:
    """Back to plain port-based dissection."""
    for layer, original in _original_guess.items():
        layer.guess_payload_class = original  # type: ignore[method-assign,assignment]
    _original_guess.clear()


enable_heuristics()
