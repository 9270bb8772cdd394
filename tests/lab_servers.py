"""Real STUN servers for the tests: coturn and Vovida stund, started on loopback.

Both come from Debian (packages coturn and stun-server; the README's test command installs
them). Each starts on free ports chosen here, never 3478, so that tests cannot clash with
anything else on the machine; its log and state live in a temporary folder; it is stopped
(its whole process group) when the ``with`` block ends, whatever happened inside. A server
counts as up only once it answers a real Binding request.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stunscan.layers import STUN

START_TIMEOUT = 10.0
ANSWER_TIMEOUT = 1.0


@dataclass(frozen=True)
class LabServer:
    """Where a started server listens; ``alternate`` is its second address (RFC 3489/5780)."""

    name: str
    host: str
    port: int
    alternate_host: str
    alternate_port: int
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


def _binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise RuntimeError(f"{name} is not installed (the README's test command installs it)")
    return path


def _port_free(family: int, kind: int, host: str, port: int) -> bool:
    with socket.socket(family, kind) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port_pair(hosts: tuple[str, ...]) -> int:
    """A port P such that P and P+1 are free for UDP and TCP on every host."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port > 65000:
            continue
        if all(
            _port_free(socket.AF_INET6 if ":" in host else socket.AF_INET, kind, host, candidate)
            for host in hosts
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM)
            for candidate in (port, port + 1)
        ):
            return port
    raise RuntimeError("no free pair of ports on loopback")


def exchange_udp(
    data: bytes, address: tuple[str, int], timeout: float = ANSWER_TIMEOUT, bind: str | None = None
) -> tuple[bytes, tuple[str, int], tuple[str, int]]:
    """Send one datagram and wait for one: (answer, where it came from, our own address)."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        # bound, so that getsockname() names the address the server sees
        sock.bind((bind or ("::1" if family == socket.AF_INET6 else "127.0.0.1"), 0))
        sock.sendto(data, address)
        answer, source = sock.recvfrom(65535)
        return answer, source[:2], sock.getsockname()[:2]


def exchange_tcp(
    data: bytes, address: tuple[str, int], timeout: float = ANSWER_TIMEOUT
) -> tuple[bytes, tuple[str, int]]:
    """Send one message over a new TCP connection; read until one whole message is in."""
    with socket.create_connection(address, timeout=timeout) as sock:
        own = sock.getsockname()[:2]
        sock.sendall(data)
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65535)
            if not chunk:
                break
            answer += chunk
            if len(answer) >= 20 and len(answer) >= 20 + int.from_bytes(answer[2:4], "big"):
                break
        return answer, own


def _wait_until_answering(server: LabServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    request = bytes(STUN(type="Binding Request"))
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            exchange_udp(request, server.address, timeout=0.2)
            return
        except OSError:
            time.sleep(0.05)
    tail = server.log.read_text(errors="replace")[-2000:] if server.log.exists() else ""
    raise RuntimeError(f"{server.name} did not answer on {server.address}; log:\n{tail}")


@contextlib.contextmanager
def _running(command: list[str], server: LabServer, folder: Path) -> Iterator[LabServer]:
    with (folder / "stdout").open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True
        )
    try:
        _wait_until_answering(server, process)
        yield server
    finally:
        stop_group(process)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started in its own session: its whole process group, TERM then KILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def coturn(
    auth: bool = False,
    ipv6: bool = True,
    port: int | None = None,
    extra: tuple[str, ...] = (),
) -> Iterator[LabServer]:
    """coturn on 127.0.0.1 (and ::1), UDP and TCP; with ``auth``, long-term credentials
    (alice / secret, realm example.org), so an Allocate without them gets a 401.
    ``port`` (and the next) must be free; by default a free pair is chosen. ``extra`` are
    more turnserver options (``--no-software-attribute``...), added last."""
    hosts = ("127.0.0.1", "::1") if ipv6 else ("127.0.0.1",)
    port = port or free_port_pair(hosts)
    with tempfile.TemporaryDirectory(prefix="stunscan-coturn-") as name:
        folder = Path(name)
        server = LabServer("coturn", "127.0.0.1", port, "127.0.0.1", port + 1, folder / "turn.log")
        command = [
            _binary("turnserver"),
            "-n",
            *(f"--listening-ip={host}" for host in hosts),
            f"--listening-port={port}",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--simple-log",
            f"--log-file={server.log}",
            f"--pidfile={folder / 'turnserver.pid'}",
            f"--userdb={folder / 'turndb.sqlite'}",
        ]
        if auth:
            command += ["--lt-cred-mech", "--user=alice:secret", "--realm=example.org"]
        command += extra
        with _running(command, server, folder) as running:
            yield running


@contextlib.contextmanager
def stund(
    primary: str = "127.0.0.1", alternate: str = "127.0.0.2", port: int | None = None
) -> Iterator[LabServer]:
    """Vovida stund (RFC 3489) on two loopback addresses and two ports."""
    port = port or free_port_pair((primary, alternate))
    with tempfile.TemporaryDirectory(prefix="stunscan-stund-") as name:
        folder = Path(name)
        server = LabServer("stund", primary, port, alternate, port + 1, folder / "stdout")
        command = [
            _binary("stund"),
            "-h",
            primary,
            "-a",
            alternate,
            "-p",
            str(port),
            "-o",
            str(port + 1),
        ]
        with _running(command, server, folder) as running:
            yield running
