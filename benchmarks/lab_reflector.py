"""A STUN reflector for the lab: answers every Binding request it sees, thousands at a time.

Run inside the lab namespace (as root)::

    python benchmarks/lab_reflector.py --interface lab0 --ports 3478-3481 --limit N --lifetime S

The receive benchmark needs every one of half a million targets to answer, sustained, faster
than the scanner can take the answers; a Python UDP socket answers ~30,000 a second. So this
reflector never goes through the lab's IP stack: it reads probe frames from an AF_PACKET
receive ring (stunscan.scan.rxring; the kernel filter of stunscan.scan.bpf passes UDP to
the ports, plus ICMP unreachables, which it ignores), judges a batch with whole-array
numpy operations, builds the answer frames as rows of a numpy array, and sends each batch
through a transmit ring (stunscan.scan.ring) that bypasses the qdisc layer (so a capture
on the lab's side does not see the answers: capture on the scanner's). No Python runs per
packet. On a veth most of the cost is the kernel's, and includes the scanner side's
receive path, which runs in the sender's context.

A probe is answered if it is an Ethernet frame to the interface's address carrying IPv4
(no options, not a fragment) or IPv6 (UDP right after the fixed header), UDP to one of the
ports, whose payload is exactly one STUN Binding request (type 0x0001, magic cookie, a
length that is a multiple of 4 and accounts for the whole datagram). Its answer is what a
server would send: addresses and ports swapped (IPv4 TTL 64, DF, ID 0; IPv6 hop limit 64),
UDP checksum computed, and a Binding success response with the probe's transaction ID,
XOR-MAPPED-ADDRESS of the probe's source and SOFTWARE ``lab reflector``: byte for byte
tests/lab_responders.py's ``answer`` (tests/test_lab_reflector.py checks it). Checksums of
the probes are not verified: the scanner's frames are built correctly, and the answer
does not depend on them.

The lab's kernel sees the probes too; :func:`silence` gives it blackhole routes for the
scanned prefixes, so that it drops them without a word (no ICMP back to the scanner).

Bounded: it stops after ``--limit`` answers, after ``--lifetime`` seconds, or on SIGTERM or
SIGINT. It prints ``ready`` once it captures, and on exit one JSON line: ``answers`` sent,
frames ``ignored``, frames the ring ``dropped`` (it was full), ``seconds`` from the first
batch to the end of the last, ``busy`` (seconds spent on batches, not waiting for frames)
and ``capacity``: answers per busy second (the rate it could sustain if never idle; only
meaningful under full load, when batches are large), and the ``cpu`` seconds it used.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stunscan import protocol as proto
from stunscan.scan.bpf import attach_filter
from stunscan.scan.frames import ipv4_header_checksums, udp_checksums
from stunscan.scan.ring import TxRing
from stunscan.scan.rxring import MAX_BATCH, Frames, RxRing, slot_size

SOFTWARE = b"lab reflector"
SUCCESS = proto.message_type(0x001, proto.MessageClass.SUCCESS_RESPONSE)
BINDING_REQUEST = proto.message_type(0x001, proto.MessageClass.REQUEST)
ETHER = 14
UDP = 8
TTL = 64
ETH_P_ALL = 0x0003
SOL_PACKET, PACKET_QDISC_BYPASS = 263, 20
HEAD = ETHER + 40 + UDP + proto.HEADER_SIZE
"""Bytes of each probe frame read: enough for Ethernet, IPv6, UDP and the STUN header."""
COOKIE = np.frombuffer(proto.MAGIC_COOKIE_BYTES, dtype=np.uint8)
WAIT = 0.05
"""Seconds a wait for frames lasts: how soon a signal or the lifetime is noticed."""
SMALL, PAUSE = 64, 0.0005
"""After a batch of fewer than SMALL frames, wait PAUSE seconds for more: a batch costs
a hundred microseconds however small, so at low rates answering each frame as it comes
would keep a core busy (that the scanner needs on a small machine) for nothing. At most
half a millisecond of delay; under load the batches are larger and it never waits."""
FIRST_TAKE = 256


@dataclass(frozen=True)
class Family:
    """IPv4 or IPv6: where the fields sit (the same in a probe and in its answer, whose
    headers have the same sizes) and the answer frame with everything constant in place."""

    version: int
    ethertype: int
    source: int
    """Offset of the IP source address; the destination follows it, then UDP."""
    size: int
    """Bytes of an address."""
    template: np.ndarray = field(repr=False)

    @property
    def udp(self) -> int:
        return self.source + 2 * self.size

    @property
    def stun(self) -> int:
        return self.udp + UDP

    @classmethod
    def build(cls, version: int) -> Family:
        size = 4 if version == 4 else 16
        anywhere = "0.0.0.0" if version == 4 else "::"
        key = proto.MAGIC_COOKIE_BYTES + bytes(12)
        message = proto.encode_message(
            SUCCESS,
            bytes(12),
            [
                (proto.XOR_MAPPED_ADDRESS, proto.encode_xor_address(anywhere, 0, key)),
                (proto.SOFTWARE, SOFTWARE),
            ],
        )
        udp_length = UDP + len(message)
        if version == 4:
            ethertype = 0x0800
            ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + udp_length, 0, 0x4000, TTL, 17, 0)
            source = ETHER + 12
        else:
            ethertype = 0x86DD
            ip = struct.pack("!IHBB", 6 << 28, udp_length, 17, TTL)
            source = ETHER + 8
        ip += bytes(2 * size)
        frame = bytes(12) + struct.pack("!H", ethertype) + ip
        frame += struct.pack("!HHHH", 0, 0, udp_length, 0) + message
        template = np.frombuffer(frame, dtype=np.uint8)
        return cls(version, ethertype, source, size, template)

    def accepts(
        self, head: np.ndarray, captured: np.ndarray, mac: np.ndarray, ports: tuple[int, int]
    ) -> np.ndarray:
        """Which rows of ``head`` (a batch's first HEAD bytes, as ``(frames, HEAD)``) are
        whole STUN Binding requests of this family sent to ``mac``, to a port in ``ports``."""
        words = head.view(">u2")
        udp, stun = self.udp // 2, self.stun // 2
        ok = (words[:, 6] == self.ethertype) & (head[:, :6] == mac).all(axis=1)
        ok &= (words[:, udp + 1] >= ports[0]) & (words[:, udp + 1] <= ports[1])
        udp_length = words[:, udp + 2].astype(np.int64)
        if self.version == 4:
            ok &= (head[:, ETHER] == 0x45) & (head[:, ETHER + 9] == 17)
            ok &= (words[:, ETHER // 2 + 3] & 0x3FFF) == 0  # neither more fragments nor offset
            ip_length = words[:, ETHER // 2 + 1].astype(np.int64) - 20
        else:
            ok &= (head[:, ETHER] >> 4 == 6) & (head[:, ETHER + 6] == 17)
            ip_length = words[:, ETHER // 2 + 2].astype(np.int64)
        ok &= (udp_length == ip_length) & (captured >= self.udp + udp_length)
        stun_length = words[:, stun + 1].astype(np.int64)
        ok &= (words[:, stun] == BINDING_REQUEST) & (stun_length & 3 == 0)
        ok &= (words[:, stun + 2] == 0x2112) & (words[:, stun + 3] == 0xA442)
        return ok & (stun_length + proto.HEADER_SIZE + UDP == udp_length)

    def answers(self, head: np.ndarray) -> np.ndarray:
        """The answer frames (one row each) to the probes whose first bytes are ``head``."""
        out = np.tile(self.template, (len(head), 1))
        source, size, udp, stun = self.source, self.size, self.udp, self.stun
        destination = source + size
        out[:, 0:6], out[:, 6:12] = head[:, 6:12], head[:, 0:6]
        out[:, source:destination] = head[:, destination:udp]
        out[:, destination:udp] = head[:, source:destination]
        out[:, udp : udp + 2], out[:, udp + 2 : udp + 4] = (
            head[:, udp + 2 : udp + 4],
            head[:, udp : udp + 2],
        )
        ident = head[:, stun + 8 : stun + 20]
        out[:, stun + 8 : stun + 20] = ident
        value = stun + proto.HEADER_SIZE + proto.ATTRIBUTE_HEADER_SIZE  # XOR-MAPPED-ADDRESS's
        out[:, value + 2 : value + 4] = head[:, udp : udp + 2] ^ COOKIE[:2]
        out[:, value + 4 : value + 8] = head[:, source : source + 4] ^ COOKIE
        if self.version == 6:
            out[:, value + 8 : value + 20] = head[:, source + 4 : destination] ^ ident
        _checksums(out, self)
        return out


def _checksums(out: np.ndarray, family: Family) -> None:
    """UDP (and IPv4 header) checksums along the rows, as the scanner's frames get them."""
    words = out.view(">u2")
    udp_checksums(words, family.source, family.udp, len(family.template) - family.udp)
    if family.version == 4:
        ipv4_header_checksums(words, family.udp)


class Reflector:
    """The two rings on one interface, and what was done so far."""

    def __init__(self, interface: str, ports: tuple[int, int]) -> None:
        self.ports = ports
        self.families = (Family.build(4), Family.build(6))
        address = Path(f"/sys/class/net/{interface}/address").read_text().strip()
        self.mac = np.frombuffer(bytes.fromhex(address.replace(":", "")), dtype=np.uint8)
        receive = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        attach_filter(receive, *ports)
        self.ring = RxRing(receive, slot_size(interface))
        receive.bind((interface, ETH_P_ALL))
        self.slots = self.ring.flat.reshape(self.ring.slots, self.ring.slot)
        send = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        send.bind((interface, 0))
        send.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        # straight to the driver: on a veth the qdisc layer costs a quarter of the send
        send.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        self.tx = TxRing(send)
        self.answered = self.ignored = 0
        self.started = self.finished = self.busy = 0.0
        self.cpu = _cpu()

    def head(self, frames: Frames) -> np.ndarray:
        """The first HEAD bytes of each frame of a batch, one row each."""
        offsets = frames.starts - frames.slots.astype(np.int64) * self.ring.slot
        if (offsets == offsets[0]).all():  # the usual case: one slice of every slot
            first = int(offsets[0])
            return self.slots[frames.slots, first : first + HEAD]
        return self.ring.flat[frames.starts[:, None] + np.arange(HEAD)]

    def batch(self, frames: Frames, room: int) -> None:
        """Answer the valid probes of one batch, at most ``room`` of them."""
        head = self.head(frames)
        ethertype = head.view(">u2")[:, 6]
        handled = 0
        for family in self.families:
            rows = np.flatnonzero(ethertype == family.ethertype)
            if not len(rows):
                continue
            mine = head[rows]
            ok = family.accepts(mine, frames.captured[rows], self.mac, self.ports)
            chosen = mine[ok][: room - handled]
            if len(chosen):
                self.tx.send(family.answers(chosen))
                handled += len(chosen)
        self.answered += handled
        self.ignored += len(frames) - handled

    def run(self, limit: int, lifetime: float, stop: list[bool]) -> None:
        deadline = time.monotonic() + lifetime
        take = FIRST_TAKE
        while self.answered < limit and not stop and time.monotonic() < deadline:
            if not self.ring.wait(WAIT):
                continue
            began = time.monotonic()
            self.started = self.started or began
            frames = self.ring.take(take)
            if not len(frames):
                continue
            # take() reads the status of every slot it may return: ask for what is likely
            take = MAX_BATCH if len(frames) == take else max(FIRST_TAKE, 2 * len(frames))
            self.batch(frames, limit - self.answered)
            self.ring.release(frames)
            self.finished = time.monotonic()
            self.busy += self.finished - began
            if len(frames) < SMALL:
                time.sleep(PAUSE)

    def report(self) -> dict[str, Any]:
        _passed, dropped = self.ring.statistics()
        seconds = self.finished - self.started
        return {
            "answers": self.answered,
            "ignored": self.ignored,
            "dropped": dropped,
            "seconds": round(seconds, 6),
            "busy": round(self.busy, 6),
            "capacity": round(self.answered / self.busy) if self.busy else 0,
            "cpu": round(_cpu() - self.cpu, 3),
        }


def _cpu() -> float:
    """CPU seconds this process has used (user and system)."""
    times = os.times()
    return times.user + times.system


# ------------------------------------------------------------------ for the lab's harness


def silence(lab: Any, prefixes: tuple[str, ...]) -> None:
    """Blackhole routes in the lab for ``prefixes``: its kernel then drops probes to them
    without an ICMP error (and so does it the scanner's ICMP port unreachables)."""
    for prefix in prefixes:
        subprocess.run(["ip", "-n", lab.lab, "route", "add", "blackhole", prefix], check=True)


def icmp_unreachables(namespace: str) -> int:
    """ICMP and ICMPv6 destination unreachables received in ``namespace`` so far."""

    def read(path: str) -> str:
        command = ["ip", "netns", "exec", namespace, "cat", path]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    names, values = (
        line.split() for line in read("/proc/net/snmp").splitlines() if line.startswith("Icmp:")
    )
    v4 = int(values[names.index("InDestUnreachs")])
    v6 = next(
        int(line.split()[1])
        for line in read("/proc/net/snmp6").splitlines()
        if line.startswith("Icmp6InDestUnreachs")
    )
    return v4 + v6


class Running:
    """A reflector started in the lab: wait until it captures, stop it, read its report."""

    def __init__(
        self, lab: Any, name: str, ports: str = "3478-3481", limit: int = 10_000_000,
        lifetime: float = 600.0, interface: str = "lab0",
    ) -> None:  # fmt: skip
        self.log = Path(lab.folder) / f"{name}.log"
        command = [
            sys.executable, str(Path(__file__).resolve()), "--interface", interface,
            "--ports", ports, "--limit", str(limit), "--lifetime", str(lifetime),
        ]  # fmt: skip
        self.process = lab.start(name, command)
        deadline = time.monotonic() + 15
        while "ready" not in self._text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the reflector did not start:\n{self._text()}")
            time.sleep(0.02)

    def _text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def result(self, timeout: float = 15.0) -> dict[str, Any]:
        """Its report, once it has stopped (asked to with SIGTERM if it still runs)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout)
        last = self._text().strip().splitlines()[-1]
        return json.loads(last)


# ------------------------------------------------------------------ command line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interface", default="lab0")
    parser.add_argument("--ports", default="3478-3481", help="LOW-HIGH or one port")
    parser.add_argument("--limit", type=int, default=1_000_000)
    parser.add_argument("--lifetime", type=float, default=60.0)
    args = parser.parse_args()
    low, _, high = args.ports.partition("-")
    reflector = Reflector(args.interface, (int(low), int(high or low)))
    stop: list[bool] = []
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.append(True))
    print("ready", flush=True)
    reflector.run(args.limit, args.lifetime, stop)
    print(json.dumps(reflector.report()), flush=True)


if __name__ == "__main__":
    main()
