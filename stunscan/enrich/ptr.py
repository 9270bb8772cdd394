"""Reverse DNS (PTR) of server addresses: dnspython's asyncio resolver in a thread of its
own, so that callers (the scan's writer, ``pcap``, ``probe``) only hand addresses in and
collect futures.

At most CONCURRENCY queries are in flight; each has ``timeout`` seconds in all. Every
outcome is cached, a missing name (NXDOMAIN, no PTR) and a timeout too, so an address is
asked once per run. The server is ``--resolver IP[:PORT]``, else the system's (resolv.conf).
With the system's resolver, special-purpose addresses (private, loopback, documentation...)
are not asked at all: their reverse zones are not the public DNS's business (RFC 6761,
RFC 6303) and a public resolver asked for them only leaks what was scanned. A resolver
named with ``--resolver`` is asked for every address (a lab's or a site's own).

The name is the PTR target as dnspython writes it (ASCII; bytes outside printable ASCII
as ``\\DDD``, never decoded from IDNA): text from the network, escaped again where shown.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stunscan.special import is_special

if TYPE_CHECKING:
    import asyncio  # (imported where used: the pcap and scan commands without --ptr never)

CONCURRENCY = 256
DEFAULT_TIMEOUT = 2.0
NAME, MISSING, TIMEOUT, FAILED = "name", "no name", "timed out", "failed"


class ResolverError(ValueError):
    """A --resolver that is not IP[:PORT] (a usage error)."""


@dataclass(frozen=True, slots=True)
class PtrAnswer:
    """What a PTR lookup came to: a name, or why there is none."""

    status: str
    name: str = ""


def parse_resolver(text: str) -> tuple[str, int]:
    """'192.0.2.53', '192.0.2.53:5353', '2001:db8::53', '[2001:db8::53]:5353' -> (ip, port)."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ResolverError(f"--resolver {text!r}: expected IP, IP:PORT or [IPv6]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ResolverError(f"--resolver {text!r}: not an IP address") from None
    if port_text and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ResolverError(f"--resolver {text!r}: not a port: {port_text!r}")
    return address, int(port_text) if port_text else 53


async def _cancel_all() -> None:
    import asyncio

    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class PtrResolver:
    """PTR lookups, each once, in a background event loop started on first use."""

    def __init__(
        self,
        server: tuple[str, int] | None,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.server = server
        self.timeout = timeout
        self.concurrency = concurrency
        self.cache: dict[str, Future[PtrAnswer]] = {}
        self.problem = ""
        """Why no query could be sent at all (no resolver configured), once."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._resolver: Any = None
        self._slots: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    def wanted(self, ip: str) -> bool:
        """Whether ``ip`` is looked up at all (see the module's docstring)."""
        return self.server is not None or not is_special(ip)

    def lookup(self, ip: str) -> Future[PtrAnswer] | None:
        """The (shared, cached) future answer for ``ip``; None if it is not looked up."""
        found = self.cache.get(ip)
        if found is not None:
            return found
        if not self.wanted(ip):
            return None
        import asyncio

        loop = self._start()
        future = asyncio.run_coroutine_threadsafe(self._ask(ip), loop)
        self.cache[ip] = future
        return future

    def _start(self) -> asyncio.AbstractEventLoop:
        import asyncio

        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="stunscan-ptr", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _ask(self, ip: str) -> PtrAnswer:
        import asyncio

        import dns.exception
        import dns.resolver
        import dns.reversename

        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            resolver = self._make_resolver()
            if resolver is None:
                return PtrAnswer(FAILED)
            try:
                answer = await resolver.resolve(
                    dns.reversename.from_address(ip), "PTR", lifetime=self.timeout,
                    search=False,
                )  # fmt: skip
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                return PtrAnswer(MISSING)
            except dns.exception.Timeout:
                return PtrAnswer(TIMEOUT)
            except dns.exception.DNSException:
                return PtrAnswer(FAILED)
            names = sorted(record.target.to_text(omit_final_dot=True) for record in answer)
            return PtrAnswer(NAME, names[0]) if names else PtrAnswer(MISSING)

    def _make_resolver(self) -> Any:
        """The resolver, made in the loop's thread on first use: the system's reads
        /etc/resolv.conf then, and only if a lookup is wanted."""
        if self._resolver is None and not self.problem:
            import dns.asyncresolver
            import dns.resolver

            if self.server is None:
                try:
                    resolver = dns.asyncresolver.Resolver()
                except dns.resolver.NoResolverConfiguration:
                    self.problem = "no DNS resolver configured (give --resolver IP)"
                    return None
            else:
                resolver = dns.asyncresolver.Resolver(configure=False)
                resolver.nameservers = [self.server[0]]
                resolver.port = self.server[1]
            resolver.timeout = self.timeout
            resolver.lifetime = self.timeout
            resolver.cache = None
            self._resolver = resolver
        return self._resolver

    def close(self) -> None:
        """Stop the loop; queries still in flight are cancelled (and awaited, so that
        none is left to the garbage collector half-run)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        import asyncio

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(timeout=2)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=2)
        if not thread.is_alive():
            loop.close()

    def described(self) -> str:
        if self.server is None:
            return "the system's resolver (global addresses only)"
        host, port = self.server
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
