"""stunscan's Scapy layer against Scapy's own ``scapy.contrib.stun`` on the same inputs.

Run: ``python benchmarks/layer_vs_scapy_contrib.py`` (needs ../shared/corpus).

For every STUN message in the corpus captures and RFC vectors (found by stunscan's layer,
then handed as the same bytes to both), it counts: messages each dissects without falling
back to Raw, attributes decoded to a typed value (not an opaque TLV), XOR addresses
decoded, malformed messages flagged, byte-identical rebuilds; then the dissection rate,
median of several runs. Prints the two side by side with ratios.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from stunscan import protocol as proto
from stunscan.capture.messages import CaptureMessages
from stunscan.layers import STUN, STUNClassic

from corpus import CORPUS

RUNS = 5


def corpus_messages() -> list[bytes]:
    found = [
        bytes.fromhex(v["hex"])
        for v in json.loads((CORPUS / "rfc-vectors.json").read_text())["vectors"]
    ]
    for path in sorted((CORPUS / "pcaps").rglob("*.pcap")):
        found.extend(
            m.data
            for m in CaptureMessages(path)
            if m.kind in (proto.STUN_MESSAGE, proto.CLASSIC_MESSAGE) and not m.quoted_in_icmp
        )
    return found


def ours(data: bytes) -> dict[str, int]:
    pkt = STUN(data)
    attrs = getattr(pkt, "attributes", [])
    return {
        "dissected": int(isinstance(pkt, STUN)),
        "classic as classic": int(isinstance(pkt, STUNClassic)),
        "typed attributes": sum(
            1 for a in attrs if getattr(a, "kind", "bytes") != "bytes" and not a.problem()
        ),
        "XOR addresses decoded": sum(1 for a in attrs if getattr(a, "kind", "") == "xor-address"),
        "malformed flagged": int(bool(getattr(pkt, "malformed", False))),
        "byte-identical rebuild": int(bytes(pkt) == data),
    }


def theirs(data: bytes) -> dict[str, int]:
    import scapy.contrib.stun as contrib

    try:
        pkt = contrib.STUN(data)
        attrs = list(pkt.attributes)
        rebuilt = bytes(pkt) == data
    except Exception:
        return dict.fromkeys(ours(data), 0)
    typed = [a for a in attrs if type(a) is not contrib.STUNGenericTlv]
    return {
        "dissected": 1,
        "classic as classic": 0,  # the contrib layer has no RFC 3489 support
        "typed attributes": len(typed),
        "XOR addresses decoded": sum(1 for a in attrs if type(a) is contrib.STUNXorMappedAddress),
        "malformed flagged": 0,  # it has no notion of a malformed message
        "byte-identical rebuild": int(rebuilt),
    }


def rate(decode, messages: list[bytes]) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for data in messages:
            with contextlib.suppress(Exception):
                decode(data)
        times.append(time.perf_counter() - start)
    return len(messages) / statistics.median(times)


def main() -> None:
    # Collect first: importing scapy.contrib.stun re-binds UDP 3478 to its own layer.
    messages = corpus_messages()
    import scapy.contrib.stun as contrib

    totals_ours: dict[str, int] = {}
    totals_theirs: dict[str, int] = {}
    for data in messages:
        for totals, result in ((totals_ours, ours(data)), (totals_theirs, theirs(data))):
            for key, value in result.items():
                totals[key] = totals.get(key, 0) + value
    print(f"{len(messages)} STUN messages from the corpus (captures + RFC vectors)\n")
    print(f"{'':28}{'stunscan':>12}{'scapy.contrib':>15}{'ratio':>9}")
    for key in totals_ours:
        a, b = totals_ours[key], totals_theirs[key]
        ratio = f"{a / b:.2f}x" if b else "n/a"
        print(f"{key:28}{a:>12}{b:>15}{ratio:>9}")
    ours_rate = rate(STUN, messages)
    theirs_rate = rate(contrib.STUN, messages)
    ratio = ours_rate / theirs_rate
    print(f"{'messages/s (median of 5)':28}{ours_rate:>12.0f}{theirs_rate:>15.0f}{ratio:>8.2f}x")


if __name__ == "__main__":
    main()
