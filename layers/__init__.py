"""Scapy layers for STUN (RFC 3489 / 5389 / 8489), TURN ChannelData and their attributes.

``from stunscan.layers import *`` gives the message layers, every attribute sub-layer and
binds them to UDP/TCP 3478 (plus a heuristic for other ports, see :mod:`.bindings`). The
binding happens as soon as Scapy's IP layers are loaded (at once if they are already), so
that dissecting message bytes alone does not pay for loading them (:mod:`.deferred`).
"""

from typing import Any

from .attributes import (
    KIND_CLASSES,
    STUNAttrAddress,
    STUNAttrAddressError,
    STUNAttrChannel,
    STUNAttrCounter,
    STUNAttrEmpty,
    STUNAttrErrorCode,
    STUNAttrEvenPort,
    STUNAttrFamily,
    STUNAttrFingerprint,
    STUNAttribute,
    STUNAttrICMP,
    STUNAttrList,
    STUNAttrMessageIntegrity,
    STUNAttrPasswordAlgorithm,
    STUNAttrPasswordAlgorithms,
    STUNAttrString,
    STUNAttrTransport,
    STUNAttrU32,
    STUNAttrU64,
    STUNAttrXorAddress,
    STUNPasswordAlgorithm,
    STUNTrailingBytes,
    make_attribute,
)
from .channeldata import ChannelData
from .deferred import when_inet_loaded
from .stun import STUN, RFC4571Frame, STUNClassic, STUNStream, STUNTruncated


def _bind() -> None:
    from . import bindings  # noqa: F401  (binding is what importing it does)


when_inet_loaded(_bind)

_FROM_BINDINGS = ("STUN_PORT", "disable_heuristics", "enable_heuristics")


def __getattr__(name: str) -> Any:
    """STUN_PORT and the heuristic switches live with the bindings: asking for them loads
    those (and Scapy's IP layers)."""
    if name in _FROM_BINDINGS:
        from . import bindings

        return getattr(bindings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "KIND_CLASSES",
    "STUN",
    "STUN_PORT",
    "ChannelData",
    "RFC4571Frame",
    "STUNAttrAddress",
    "STUNAttrAddressError",
    "STUNAttrChannel",
    "STUNAttrCounter",
    "STUNAttrEmpty",
    "STUNAttrErrorCode",
    "STUNAttrEvenPort",
    "STUNAttrFamily",
    "STUNAttrFingerprint",
    "STUNAttrICMP",
    "STUNAttrList",
    "STUNAttrMessageIntegrity",
    "STUNAttrPasswordAlgorithm",
    "STUNAttrPasswordAlgorithms",
    "STUNAttrString",
    "STUNAttrTransport",
    "STUNAttrU32",
    "STUNAttrU64",
    "STUNAttrXorAddress",
    "STUNAttribute",
    "STUNClassic",
    "STUNPasswordAlgorithm",
    "STUNStream",
    "STUNTrailingBytes",
    "STUNTruncated",
    "disable_heuristics",
    "enable_heuristics",
    "make_attribute",
]
