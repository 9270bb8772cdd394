"""Why a response amplifies: its bytes per part, each part's share of the factor, and which
parts the answer could do without.

A reflector's amplification factor is response bytes / request bytes. Splitting the
response into its header (20 bytes) and its attributes (4 + value + padding each) shows
where the factor comes from: with the report's 20-byte probe, an attribute of 28 bytes adds
1.40 to the factor. A Binding success needs only XOR-MAPPED-ADDRESS (RFC 8489 7.3.1; a
classic RFC 3489 answer needs MAPPED-ADDRESS instead); everything else is a setting away.

Built from a fast-codec :class:`stunscan.codec.Message` (no Scapy), so ``probe``,
``explain`` and the analysers share one computation.
"""

from __future__ import annotations

from dataclasses import dataclass

from stunscan import protocol as proto
from stunscan.codec import Message

REPORT_PROBE_SIZE = len(proto.REFERENCE_PROBE)
XOR_MAPPED_IPV4 = proto.ATTRIBUTE_HEADER_SIZE + 8
XOR_MAPPED_IPV6 = proto.ATTRIBUTE_HEADER_SIZE + 20
MINIMUM_IPV4 = proto.HEADER_SIZE + XOR_MAPPED_IPV4
"""The smallest compliant Binding success over IPv4: 32 bytes (1.60x the report's probe)."""
MINIMUM_IPV6 = proto.HEADER_SIZE + XOR_MAPPED_IPV6
"""Over IPv6: 44 bytes (2.20x)."""

BINDING_SUCCESS = proto.message_type(0x001, proto.MessageClass.SUCCESS_RESPONSE)

NEEDED = "needed"
REMOVABLE = "removable"
OTHER = "other"
"""Not judged: a part of a message this module knows no rule for (TURN, errors...)."""

_WHY_REMOVABLE: dict[int, str] = {
    proto.MAPPED_ADDRESS: "RFC 3489 backward compatibility: XOR-MAPPED-ADDRESS says the same",
    proto.ATTRIBUTE_CODES["RESPONSE-ORIGIN"]: "RFC 5780 NAT discovery only",
    proto.ATTRIBUTE_CODES["OTHER-ADDRESS"]: "RFC 5780 NAT discovery only",
    proto.SOURCE_ADDRESS: "RFC 3489 only (deprecated)",
    proto.CHANGED_ADDRESS: "RFC 3489 only (deprecated)",
    proto.SOFTWARE: "informational (RFC 8489 14.14: SHOULD be configurable off)",
    proto.XOR_MAPPED_ADDRESS_LEGACY: "pre-RFC 5389 draft copy of XOR-MAPPED-ADDRESS",
    proto.FINGERPRINT: "needed only when the request carried FINGERPRINT (RFC 8489 7.3)",
    proto.PADDING: "RFC 5780: only when the request asked with PADDING",
}


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of the response on the wire and what it costs."""

    name: str
    size: int
    share: float
    """``size`` / request size: what this part adds to the factor."""
    verdict: str
    why: str

    def line(self, factor: float) -> str:
        """'SOFTWARE 28 bytes = 1.40 of 4.60x (removable: ...)'."""
        return f"{self.name} {self.size} bytes = {self.share:.2f} of {factor:.2f}x"


@dataclass(frozen=True, slots=True)
class Budget:
    """A response's bytes per part, against the request that drew it."""

    request_size: int
    response_size: int
    parts: tuple[Part, ...]
    ipv6: bool
    known: bool
    """True where the rules above apply (a Binding success); False for other messages."""

    @property
    def factor(self) -> float:
        return self.response_size / self.request_size

    @property
    def removable(self) -> tuple[Part, ...]:
        return tuple(p for p in self.parts if p.verdict == REMOVABLE)

    @property
    def minimum_size(self) -> int:
        """What a compliant answer of this kind needs (the needed parts), if known."""
        if not self.known:
            return self.response_size
        return sum(p.size for p in self.parts if p.verdict == NEEDED)

    @property
    def minimum_factor(self) -> float:
        return self.minimum_size / self.request_size

    def factor_without(self, names: set[str]) -> float:
        """The factor once the parts named are gone (one setting's prediction)."""
        kept = sum(p.size for p in self.parts if p.name not in names)
        return kept / self.request_size

    def as_json(self) -> dict[str, object]:
        return {
            "request_size": self.request_size,
            "response_size": self.response_size,
            "factor": round(self.factor, 2),
            "minimum_size": self.minimum_size,
            "minimum_factor": round(self.minimum_factor, 2),
            "judged": self.known,
            "parts": [
                {
                    "part": p.name,
                    "bytes": p.size,
                    "share": round(p.share, 2),
                    "verdict": p.verdict,
                    "why": p.why,
                }
                for p in self.parts
            ],
        }


def _family_ipv6(message: Message) -> bool:
    for attr in message.attributes:
        if attr.kind in ("address", "xor-address") and not attr.problem:
            return bool(attr.decoded.family == proto.FAMILY_IPV6)
    return False


def budget(
    message: Message,
    request_size: int = REPORT_PROBE_SIZE,
    *,
    request_fingerprint: bool = False,
    response_size: int | None = None,
) -> Budget:
    """Split ``message`` into parts and judge each for a Binding success.

    ``request_size`` is what drew it (20, the report's probe, by default);
    ``request_fingerprint`` says whether that request carried FINGERPRINT, which makes the
    answer's FINGERPRINT needed. ``response_size`` (the datagram) defaults to the message;
    bytes after the message count as a part of their own.
    """
    if request_size <= 0:
        raise ValueError("a request has at least one byte")
    binding = message.msg_type == BINDING_SUCCESS and message.is_stun
    classic = message.cookie is None
    wanted = proto.MAPPED_ADDRESS if classic else proto.XOR_MAPPED_ADDRESS
    header = proto.HEADER_SIZE if message.is_stun else 4
    parts = [Part("header", header, header / request_size, NEEDED, "every message has one")]
    seen_wanted = False
    known: dict[tuple[int, bool, int], Part] = {}  # a hostile answer repeats one 16,383 times
    for attr in message.attributes:
        size = proto.ATTRIBUTE_HEADER_SIZE + len(attr.value) + len(attr.padding)
        if attr.code < 0:
            size = len(attr.value)
        first_wanted = binding and attr.code == wanted and not seen_wanted
        key = (attr.code, attr.opaque, size)  # all a part depends on, but for the first wanted
        if not first_wanted and key in known:
            parts.append(known[key])
            continue
        verdict, why = OTHER, ""
        if binding:
            if first_wanted:
                seen_wanted = True
                verdict, why = (
                    NEEDED,
                    (
                        "the answer to a classic Binding request (RFC 3489 11.2.1)"
                        if classic
                        else "the answer to a Binding request (RFC 8489 7.3.1)"
                    ),
                )
            elif classic and attr.code in (
                proto.XOR_MAPPED_ADDRESS,
                proto.XOR_MAPPED_ADDRESS_LEGACY,
            ):
                verdict, why = REMOVABLE, "a classic client reads MAPPED-ADDRESS only"
            elif attr.code == proto.FINGERPRINT and request_fingerprint:
                verdict, why = NEEDED, "the request carried FINGERPRINT (RFC 8489 7.3)"
            elif attr.code in proto.INTEGRITY_ATTRIBUTES:
                verdict, why = NEEDED, "authenticated request: the answer must be too"
            else:
                verdict = REMOVABLE
                why = _WHY_REMOVABLE.get(attr.code, "not part of a Binding answer")
        part = Part(attr.name, size, size / request_size, verdict, why)
        if not first_wanted:
            known[key] = part
        parts.append(part)
    total = (
        response_size if response_size is not None else message.size or sum(p.size for p in parts)
    )
    extra = total - sum(p.size for p in parts)
    if extra > 0:
        parts.append(
            Part("bytes after the message", extra, extra / request_size, REMOVABLE, "stray")
        )
    return Budget(request_size, total, tuple(parts), _family_ipv6(message), binding and seen_wanted)


def minimum_line(ipv6: bool, request_size: int = REPORT_PROBE_SIZE) -> str:
    """'the least a compliant Binding success can be: 32 bytes = 1.60x (IPv4)'."""
    size = MINIMUM_IPV6 if ipv6 else MINIMUM_IPV4
    family = "IPv6" if ipv6 else "IPv4"
    return (
        f"the least a compliant Binding success can be: header + XOR-MAPPED-ADDRESS ="
        f" {size} bytes = {size / request_size:.2f}x ({family})"
    )
