"""Run the port bindings once Scapy's IP layers are loaded, not before.

Binding STUN to UDP/TCP 3478 needs ``scapy.layers.inet``, whose import reads the routing
tables and pulls in IPv6, the answering machines and ``sendrecv``: about 0.3 s, nearly
half of ``stunscan decode``'s start-up, for commands that dissect message bytes and never
an IP packet. So the package binds at once if ``scapy.layers.inet`` is already loaded, and
otherwise the moment anything loads it (``from scapy.all import *``, ``rdpcap`` of IP
packets, a test): whoever can build or dissect a UDP packet finds STUN bound to it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

INET = "scapy.layers.inet"


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of one module so that ``then`` runs right
    after that module is executed, then steps aside."""

    def __init__(self, name: str, then: Callable[[], None]) -> None:
        self.name = name
        self.then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # not loadable this way: the bindings wait for an explicit import
        loader = spec.loader
        execute = loader.exec_module
        then = self.then

        def exec_module(module: ModuleType) -> None:
            execute(module)
            then()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def when_inet_loaded(then: Callable[[], None]) -> None:
    """Run ``then`` now if ``scapy.layers.inet`` is loaded, else right after it is."""
    if INET in sys.modules:
        then()
        return
    if not any(isinstance(f, _AfterImport) and f.name == INET for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(INET, then))
