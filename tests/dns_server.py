"""A real DNS server for the enrichment tests: Debian's dnsmasq, answering PTR (and A)
queries from records given here, on a loopback port or inside a lab namespace.

It is started with a configuration of its own (no /etc/resolv.conf, no /etc/hosts, no
upstream: ``local=`` makes it answer NXDOMAIN for any other reverse name instead of
forwarding), in the foreground, its pid file and query log in a temporary folder, and
stopped (its whole process group) when the ``with`` block ends. It counts as up once it
answers a PTR query for READY's record. Every query it receives is logged, so a test
can check which of its lookups arrived.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lab_servers import stop_group

START_TIMEOUT = 10.0
READY = "192.0.2.254"
"""An address whose PTR only the readiness check asks (so tests can count their own)."""


@dataclass(frozen=True)
class DnsServer:
    host: str
    port: int
    log: Path

    @property
    def resolver(self) -> str:
        """The ``--resolver`` argument that points at it."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def queries(self) -> list[str]:
        """The names it was asked, in order (from its query log)."""
        names = []
        for line in self.log.read_text(errors="replace").splitlines():
            if "query[" in line:
                names.append(line.split("] ", 1)[1].split(" from ", 1)[0])
        return names


def available() -> bool:
    return shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin:/bin") is not None


def free_udp_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def config(ptr: dict[str, str], host: str, port: int, folder: Path) -> str:
    """dnsmasq's configuration: ``ptr`` maps addresses to the names their PTR returns."""
    lines = [
        "no-resolv",
        "no-hosts",
        "no-poll",
        f"port={port}",
        f"listen-address={host}",
        "bind-interfaces",
        "local=/in-addr.arpa/",
        "local=/ip6.arpa/",
        "log-queries",
        f"log-facility={folder / 'queries.log'}",
        "cache-size=0",
    ]
    for address, name in {**ptr, READY: "ready.example"}.items():
        reverse = ipaddress.ip_address(address).reverse_pointer
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'ptr-record={reverse},"{quoted}"')
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def dnsmasq(
    ptr: dict[str, str],
    host: str = "127.0.0.1",
    port: int | None = None,
    prefix: tuple[str, ...] = (),
) -> Iterator[DnsServer]:
    """dnsmasq answering ``ptr`` on ``host``:``port`` (a free loopback port unless given);
    ``prefix`` runs it elsewhere (``ip netns exec LAB``)."""
    port = port or free_udp_port(host)
    with tempfile.TemporaryDirectory(prefix="stunscan-dns-") as name:
        folder = Path(name)
        (folder / "dnsmasq.conf").write_text(config(ptr, host, port, folder))
        binary = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin") or "dnsmasq"
        command = [
            *prefix, binary, f"--conf-file={folder / 'dnsmasq.conf'}", "--keep-in-foreground",
            f"--pid-file={folder / 'dnsmasq.pid'}", "--user=root",
        ]  # fmt: skip
        log = (folder / "dnsmasq.out").open("wb")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        server = DnsServer(host, port, folder / "queries.log")
        try:
            if not prefix:
                _wait_until_up(server, READY, process, folder)
            yield server
        finally:
            stop_group(process)
            log.close()


def _wait_until_up(server: DnsServer, address: str, process: subprocess.Popen[bytes],
                   folder: Path) -> None:  # fmt: skip
    import dns.message
    import dns.query
    import dns.reversename

    query = dns.message.make_query(dns.reversename.from_address(address), "PTR")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError, dns.exception.Timeout):
            dns.query.udp(query, server.host, port=server.port, timeout=0.2)
            return
        time.sleep(0.05)
    output = (folder / "dnsmasq.out").read_text(errors="replace")
    raise RuntimeError(f"dnsmasq did not come up on {server.resolver}:\n{output}")
