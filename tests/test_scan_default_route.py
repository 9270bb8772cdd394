"""A lab range never leaves the lab: ``--allow`` lifts the special-purpose blocklist, but a
lifted range must be reached through a route of its own. Here the scanner's namespace has
one route, a default route to a peer namespace that counts what arrives on its interface
(``ip -s link``): scanning 203.0.113.0/28 with ``--allow 203.0.113.0/28`` is refused in one
line naming the route, exit 2, and nothing arrives; with ``--allow-default-route`` the
probes do arrive (bounded: 16 targets at 100 per second).

::

    scanner namespace                    peer namespace
    out0 198.51.100.2/24  ============  in0 198.51.100.1/24 (counts packets; forwards none)
    default via 198.51.100.1

IPv6 is off on both ends, so no neighbour discovery adds packets of its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.skipif(
    not (shutil.which("ip") and os.geteuid() == 0), reason="needs root, iproute2"
)


@dataclass
class DefaultRouteLab:
    scanner: str
    peer: str

    def received(self) -> int:
        out = subprocess.run(
            ["ip", "-n", self.peer, "-s", "-j", "link", "show", "dev", "in0"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return int(json.loads(out)[0]["stats64"]["rx"]["packets"])

    def scan(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "stunscan", "scan", "203.0.113.0/28",
                   "--allow", "203.0.113.0/28", "--max-targets", "16", "--rate", "100",
                   "--cooldown", "0.5", "--seed", "3", *args]  # fmt: skip
        return subprocess.run(
            ["ip", "netns", "exec", self.scanner, *command],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[DefaultRouteLab]:
    suffix = uuid.uuid4().hex[:8]
    built = DefaultRouteLab(f"stunscan-defroute-s-{suffix}", f"stunscan-defroute-p-{suffix}")
    try:
        for namespace in (built.scanner, built.peer):
            _run("ip", "netns", "add", namespace)
            for key in ("all", "default"):
                _run("ip", "netns", "exec", namespace, "sysctl", "-qw",
                     f"net.ipv6.conf.{key}.disable_ipv6=1")  # fmt: skip
            _run("ip", "-n", namespace, "link", "set", "lo", "up")
        _run("ip", "-n", built.scanner, "link", "add", "out0", "type", "veth", "peer", "name",
             "in0", "netns", built.peer)  # fmt: skip
        _run("ip", "-n", built.scanner, "addr", "add", "198.51.100.2/24", "dev", "out0")
        _run("ip", "-n", built.peer, "addr", "add", "198.51.100.1/24", "dev", "in0")
        _run("ip", "-n", built.scanner, "link", "set", "out0", "up")
        _run("ip", "-n", built.peer, "link", "set", "in0", "up")
        _run("ip", "-n", built.scanner, "route", "add", "default", "via", "198.51.100.1")
        time.sleep(0.5)  # the link settles
        yield built
    finally:
        for namespace in (built.scanner, built.peer):
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)


def test_an_allowed_range_behind_the_default_route_is_refused(lab: DefaultRouteLab) -> None:
    before = lab.received()
    result = lab.scan()
    time.sleep(0.3)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("stunscan: 203.0.113.0 ")
    assert "default via 198.51.100.1 dev out0" in lines[0]
    assert "--allow-default-route" in lines[0]
    assert "Traceback" not in result.stderr
    assert lab.received() == before, "a packet left the scanner"


def test_with_allow_default_route_the_probes_go(lab: DefaultRouteLab) -> None:
    before = lab.received()
    result = lab.scan("--allow-default-route")
    time.sleep(0.3)
    assert result.returncode == 0, result.stderr
    arrived = lab.received() - before
    assert 16 <= arrived <= 16 + 4, arrived  # the probes, and ARP for the next hop


def test_a_connected_lab_range_needs_no_flag(lab: DefaultRouteLab) -> None:
    """198.51.100.0/24 is on the link itself: a route of its own, scanned without the flag."""
    before = lab.received()
    command = [sys.executable, "-m", "stunscan", "scan", "198.51.100.1", "--allow",
               "198.51.100.0/24", "--rate", "100", "--cooldown", "0.2", "--seed", "1"]  # fmt: skip
    result = subprocess.run(["ip", "netns", "exec", lab.scanner, *command],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    time.sleep(0.3)
    assert result.returncode == 0, result.stderr
    assert lab.received() - before >= 1
