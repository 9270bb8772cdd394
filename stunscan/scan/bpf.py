"""The kernel filter for the sniffer: only answers to our source ports, and ICMP unreachables.

A scan's socket sees every frame on the interface; at 50,000 answers a second Python must not
also wake for everyone else's traffic. This classic BPF program, attached to the AF_PACKET
socket, passes an Ethernet frame only if it is

- not one we sent (packet type OUTGOING), and
- IPv4 UDP, not a fragment, to a destination port in our source-port range, or
- IPv6 UDP (no extension headers) to such a port, or
- ICMP destination unreachable (type 3) or ICMPv6 destination unreachable (type 1).

It is assembled here by hand (twenty-odd instructions) so that the scan needs neither
libpcap nor tcpdump at run time. ``tests/test_scan_bpf.py`` runs it against real frames.
"""

from __future__ import annotations

import ctypes
import socket
import struct

# instruction classes and modes (linux/filter.h)
_LD_H_ABS, _LD_B_ABS, _LD_H_IND, _LD_B_IND = 0x28, 0x30, 0x48, 0x50
_LDX_B_MSH = 0xB1
_JEQ_K, _JGE_K, _JGT_K, _JSET_K = 0x15, 0x35, 0x25, 0x45
_RET_K = 0x06
_SKF_AD_PKTTYPE = -0x1000 + 4
PACKET_OUTGOING = 4
SNAPLEN = 0x40000
SO_ATTACH_FILTER = 26
_ETHERTYPE, _IPV4, _IPV6 = 12, 14, 14


def _program(low: int, high: int) -> list[tuple[int, int, int, int]]:
    """(code, jump-if-true, jump-if-false, k) for ports low..high; jumps are relative."""
    accept, drop = "accept", "drop"
    lines: list[tuple[str | None, int, object, object, int]] = [
        # label, code, true target, false target, k
        (None, _LD_B_ABS, 0, 0, _SKF_AD_PKTTYPE & 0xFFFFFFFF),
        (None, _JEQ_K, drop, 0, PACKET_OUTGOING),
        (None, _LD_H_ABS, 0, 0, _ETHERTYPE),
        (None, _JEQ_K, "v4", 0, 0x0800),
        (None, _JEQ_K, "v6", drop, 0x86DD),
        ("v4", _LD_B_ABS, 0, 0, _IPV4 + 9),
        (None, _JEQ_K, "udp4", 0, 17),
        (None, _JEQ_K, "icmp4", drop, 1),
        ("udp4", _LD_H_ABS, 0, 0, _IPV4 + 6),
        (None, _JSET_K, drop, 0, 0x1FFF),
        (None, _LDX_B_MSH, 0, 0, _IPV4),
        (None, _LD_H_IND, 0, 0, _IPV4 + 2),
        (None, _JGE_K, 0, drop, low),
        (None, _JGT_K, drop, accept, high),
        ("icmp4", _LDX_B_MSH, 0, 0, _IPV4),
        (None, _LD_B_IND, 0, 0, _IPV4),
        (None, _JEQ_K, accept, drop, 3),
        ("v6", _LD_B_ABS, 0, 0, _IPV6 + 6),
        (None, _JEQ_K, "udp6", 0, 17),
        (None, _JEQ_K, "icmp6", drop, 58),
        ("udp6", _LD_H_ABS, 0, 0, _IPV6 + 40 + 2),
        (None, _JGE_K, 0, drop, low),  # BPF jumps only forward: the range check again
        (None, _JGT_K, drop, accept, high),
        ("icmp6", _LD_B_ABS, 0, 0, _IPV6 + 40),
        (None, _JEQ_K, accept, drop, 1),
        (accept, _RET_K, 0, 0, SNAPLEN),
        (drop, _RET_K, 0, 0, 0),
    ]
    where = {label: index for index, (label, *_rest) in enumerate(lines) if label}

    def jump(target: object, index: int) -> int:
        return 0 if target == 0 else where[str(target)] - index - 1

    return [
        (code, jump(true, index), jump(false, index), k)
        for index, (_label, code, true, false, k) in enumerate(lines)
    ]


def attach_filter(sock: socket.socket, low: int, high: int) -> None:
    """Attach the program for source ports ``low..high`` to an AF_PACKET socket."""
    program = _program(low, high)
    blob = b"".join(struct.pack("HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(blob)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
