"""A closed two-namespace network for scanning: real servers on one side, the scanner on the other.

::

    scanner namespace                         lab namespace
    scan0 192.0.2.2/24, 2001:db8:ffff::2  ==  lab0 192.0.2.1/24, 2001:db8:ffff::1
    routes: 203.0.113.0/24, 198.51.100.0/24,  lo: the servers' addresses (203.0.113.x,
            2001:db8:1::/64 via the lab;      2001:db8:1::x); no forwarding, so an
            nothing else, no default route    address nobody holds is silent

Only documentation ranges are used (RFC 5737, RFC 3849). The scanner's namespace has one
interface and routes only to the lab, so nothing it sends can leave. The namespaces get
unique names and are deleted when the ``with`` block ends, whatever happened inside (which
also ends every process started in them: they are killed first).

Servers: coturn (Debian) and Vovida stund (Debian), plus ``lab_responders.py``'s misbehaving
ones. A server counts as up once it answers a Binding sent from the scanner's namespace.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCANNER_V4, LAB_V4 = "192.0.2.2", "192.0.2.1"
SCANNER_V6, LAB_V6 = "2001:db8:ffff::2", "2001:db8:ffff::1"
ROUTED = ("203.0.113.0/24", "198.51.100.0/24", "2001:db8:1::/64")
START_TIMEOUT = 10.0

COTURN_V4, COTURN_V6 = "203.0.113.10", "2001:db8:1::10"
STUND_PRIMARY, STUND_ALTERNATE = "203.0.113.20", "203.0.113.21"
FORGED, MOVED = "203.0.113.30", "203.0.113.31"
SPOOFED, SPOOFER = "203.0.113.32", "203.0.113.33"
FORGED_V6 = "2001:db8:1::30"
CLOSED_V4 = "203.0.113.40"
"""Held by the lab but with nothing listening: answers ICMP port unreachable."""


def available() -> bool:
    """Root, iproute2 and the servers: what the README's test command installs."""
    return os.geteuid() == 0 and all(
        shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")
        for tool in ("ip", "turnserver", "stund")
    )


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


@dataclass
class Lab:
    """The two namespaces and what runs in them."""

    scanner: str
    lab: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def in_lab(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.lab, *command]

    def in_scanner(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.scanner, *command]

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(
            self.in_lab(*command), stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def answers(self, address: str, port: int = 3478, timeout: float = 0.3) -> bool:
        """Whether a Binding from the scanner's side to ``address`` gets an answer."""
        code = (
            "import socket,sys\n"
            "from stunscan import protocol as p\n"
            f"a=({address!r},{port})\n"
            "f=socket.AF_INET6 if ':' in a[0] else socket.AF_INET\n"
            "s=socket.socket(f,socket.SOCK_DGRAM)\n"
            f"s.settimeout({timeout})\n"
            "s.sendto(p.REFERENCE_PROBE[:8]+b'ready-check!',a)\n"
            "try: s.recvfrom(2048)\n"
            "except OSError: sys.exit(1)\n"
        )
        result = subprocess.run(self.in_scanner(sys.executable, "-c", code), capture_output=True)
        return result.returncode == 0

    def wait_for(self, address: str, port: int = 3478) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.answers(address, port):
                return
            time.sleep(0.1)
        logs = "\n".join(p.read_text(errors="replace")[-800:] for p in self.folder.glob("*.log"))
        raise RuntimeError(f"nothing answers on {address}:{port} in the lab; logs:\n{logs}")

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.processes.clear()


def _build(lab: Lab, routed: tuple[str, ...]) -> None:
    scanner, name = lab.scanner, lab.lab
    for namespace in (scanner, name):
        _run("ip", "netns", "add", namespace)
        _run("ip", "-n", namespace, "link", "set", "lo", "up")
    _run("ip", "-n", scanner, "link", "add", "scan0", "type", "veth", "peer", "name", "lab0",
         "netns", name)  # fmt: skip
    for namespace, device, v4, v6 in (
        (scanner, "scan0", SCANNER_V4, SCANNER_V6),
        (name, "lab0", LAB_V4, LAB_V6),
    ):
        _run("ip", "-n", namespace, "addr", "add", f"{v4}/24", "dev", device)
        _run("ip", "-n", namespace, "addr", "add", f"{v6}/64", "dev", device, "nodad")
        _run("ip", "-n", namespace, "link", "set", device, "up")
    for prefix in routed:
        via = LAB_V6 if ":" in prefix else LAB_V4
        _run("ip", "-n", scanner, "route", "add", prefix, "via", via)
    for address in (COTURN_V4, STUND_PRIMARY, STUND_ALTERNATE, FORGED, MOVED, SPOOFED, SPOOFER,
                    CLOSED_V4):  # fmt: skip
        _run("ip", "-n", name, "addr", "add", f"{address}/32", "dev", "lo")
    for address in (COTURN_V6, FORGED_V6):
        _run("ip", "-n", name, "addr", "add", f"{address}/128", "dev", "lo", "nodad")


def _servers(lab: Lab) -> None:
    python, responders = sys.executable, str(HERE / "lab_responders.py")
    lab.start("coturn", [
        shutil.which("turnserver", path="/usr/sbin:/usr/bin") or "turnserver", "-n",
        f"--listening-ip={COTURN_V4}", f"--listening-ip={COTURN_V6}", "--listening-port=3478",
        "--no-tls", "--no-dtls", "--no-cli", "--simple-log", f"--log-file={lab.folder}/turn.log",
        f"--pidfile={lab.folder}/turn.pid", f"--userdb={lab.folder}/turn.db",
        "--no-rfc5780",
    ])  # fmt: skip
    lab.start("stund", [
        shutil.which("stund", path="/usr/sbin:/usr/bin") or "stund",
        "-h", STUND_PRIMARY, "-a", STUND_ALTERNATE, "-p", "3478", "-o", "3479",
    ])  # fmt: skip
    lab.start("forged", [python, responders, "forged", FORGED])
    lab.start("forged6", [python, responders, "forged", FORGED_V6])
    lab.start("moved", [python, responders, "moved", MOVED])
    lab.start("spoof", [python, responders, "spoof", SPOOFED, SPOOFER])
    for address in (COTURN_V4, COTURN_V6, STUND_PRIMARY, FORGED, MOVED):
        lab.wait_for(address)


@contextlib.contextmanager
def scan_lab(servers: bool = True, routed: tuple[str, ...] = ROUTED) -> Iterator[Lab]:
    """The lab, built, (optionally) with its servers up; all of it removed afterwards.
    ``routed``: the prefixes the scanner reaches through the lab (documentation or
    benchmark ranges only)."""
    suffix = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="stunscan-lab-") as folder:
        lab = Lab(f"stunscan-scanner-{suffix}", f"stunscan-lab-{suffix}", Path(folder))
        try:
            _build(lab, routed)
            if servers:
                _servers(lab)
            yield lab
        finally:
            lab.stop()
            for namespace in (lab.scanner, lab.lab):
                subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


EXPECTED_V4 = {COTURN_V4, STUND_PRIMARY, STUND_ALTERNATE, MOVED}
"""Who must be found on 203.0.113.0/26, port 3478: coturn, stund's two addresses, and the
server answering from another port (flagged). Not the forged or spoofed answers."""
EXPECTED_V6 = {COTURN_V6}
