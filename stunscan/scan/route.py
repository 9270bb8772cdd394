"""Where raw frames go: interface, source address, and the next hop's MAC, per family.

An AF_PACKET sender bypasses the kernel's routing, so it must do once, up front, what the
kernel would do per packet: pick the interface and source address the route to the targets
uses, and the Ethernet address of the next hop (the gateway, or the target itself on a
directly connected network). The kernel is asked (``ip -j route get``, ``ip -j neigh``,
from iproute2) rather than re-implementing routing; if the neighbour is not yet known, one
empty UDP datagram to the discard port of the next hop makes the kernel resolve it, as it
would before any first packet. One route per family serves the whole scan, as in zmap.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772
NEIGHBOUR_WAIT = 2.0


class RouteError(Exception):
    """No usable route or next hop (one line, exit 2)."""


@dataclass(frozen=True, slots=True)
class Route:
    """What a frame to this family's targets needs."""

    version: int
    interface: str
    source: str
    source_mac: bytes
    next_hop_mac: bytes


def _ip_json(*args: str) -> list[dict[str, object]]:
    binary = shutil.which("ip") or shutil.which("ip", path="/usr/sbin:/sbin:/usr/bin")
    if binary is None:
        raise RouteError("the ip command (iproute2) is needed to find the route")
    result = subprocess.run([binary, "-j", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RouteError(result.stderr.strip() or f"ip {' '.join(args)} failed")
    parsed = json.loads(result.stdout or "[]")
    return parsed if isinstance(parsed, list) else []


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    if len(parts) != 6:
        raise RouteError(f"not a MAC address: {text!r}")
    try:
        return bytes(int(part, 16) for part in parts)
    except ValueError:
        raise RouteError(f"not a MAC address: {text!r}") from None


def _interface_mac(interface: str) -> tuple[int, bytes]:
    base = Path("/sys/class/net", interface)
    try:
        kind = int((base / "type").read_text())
        mac = (base / "address").read_text().strip()
    except OSError:
        raise RouteError(f"no such interface: {interface}") from None
    if kind not in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
        raise RouteError(f"{interface} is not an Ethernet or loopback interface")
    return kind, parse_mac(mac)


def _neighbour(next_hop: str, interface: str, version: int) -> bytes | None:
    entries = _ip_json(f"-{version}", "neigh", "show", "to", next_hop, "dev", interface)
    for entry in entries:
        mac = entry.get("lladdr")
        states = entry.get("state")
        broken = isinstance(states, list) and bool({"FAILED", "INCOMPLETE"} & set(states))
        if isinstance(mac, str) and not broken:
            return parse_mac(mac)
    return None


def _resolve_neighbour(next_hop: str, interface: str, version: int) -> bytes:
    mac = _neighbour(next_hop, interface, version)
    if mac is not None:
        return mac
    family = socket.AF_INET6 if version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as nudge:
        nudge.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        try:
            nudge.sendto(b"", (next_hop, 9))
        except OSError as exc:
            raise RouteError(f"cannot reach the next hop {next_hop}: {exc.strerror}") from None
    deadline = time.monotonic() + NEIGHBOUR_WAIT
    while time.monotonic() < deadline:
        mac = _neighbour(next_hop, interface, version)
        if mac is not None:
            return mac
        time.sleep(0.05)
    raise RouteError(f"the next hop {next_hop} on {interface} did not answer ARP/ND")


def find_route(
    target: str,
    interface: str | None = None,
    source: str | None = None,
    next_hop_mac: str | None = None,
) -> Route:
    """The route the kernel would use to ``target``, with options overriding its choices."""
    version = 6 if ":" in target else 4
    args = [f"-{version}", "route", "get", target]
    if interface:
        args += ["oif", interface]
    if source:
        args += ["from", source]
    routes = _ip_json(*args)
    if not routes:
        raise RouteError(f"no route to {target}")
    route = routes[0]
    device = str(route.get("dev", ""))
    if route.get("type") in ("unreachable", "blackhole", "prohibit") or not device:
        raise RouteError(f"no route to {target}")
    chosen_source = source or str(route.get("prefsrc", ""))
    if not chosen_source:
        raise RouteError(f"no source address for {target}; give --source-ip")
    kind, own_mac = _interface_mac(device)
    if next_hop_mac:
        peer = parse_mac(next_hop_mac)
    elif kind == ARPHRD_LOOPBACK:
        peer = bytes(6)
    else:
        peer = _resolve_neighbour(str(route.get("gateway") or target), device, version)
    return Route(version, device, chosen_source, own_mac, peer)


def default_route_to(
    target: str, interface: str | None = None, source: str | None = None
) -> str | None:
    """The default route ('default via 192.0.2.1 dev eth0') if that is the route the
    kernel would use to ``target``, else None (a connected network, a more specific
    route, a local address). ``ip route get ... fibmatch`` names the route that matched,
    not just the next hop."""
    version = 6 if ":" in target else 4
    args = [f"-{version}", "route", "get", target, "fibmatch"]
    if interface:
        args += ["oif", interface]
    if source:
        args += ["from", source]
    routes = _ip_json(*args)
    if not routes:
        return None
    route = routes[0]
    if route.get("dst") not in ("default", "0.0.0.0/0", "::/0"):
        return None
    text = "default"
    if route.get("gateway"):
        text += f" via {route['gateway']}"
    if route.get("dev"):
        text += f" dev {route['dev']}"
    return text
