"""Scapy layers for STUN (RFC 3489 / 5389 / 8489), TURN ChannelData and their attributes.

``from stunscan.layers import *`` gives the message layers, every attribute sub-layer and
binds them to UDP/TCP 3478 (plus a heuristic for other ports, see :mod:`.bindings`).
"""

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
from .bindings import STUN_PORT, disable_heuristics, enable_heuristics
from .channeldata import ChannelData
from .stun import STUN, RFC4571Frame, STUNClassic, STUNStream, STUNTruncated

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
