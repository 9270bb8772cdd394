"""``stunscan shell``: Scapy's own interactive console with the STUN layers and the project's
captures ready, for learning by doing.

Everything a first session needs is preloaded: the layers and ``make_attribute``, the
protocol helpers (``proto``, the key functions), the fast decoder, the budget and advice,
``explain(packet)`` (what ``stunscan explain`` shows) and ``pcaps``, the project's own
captures read with ``rdpcap`` (a dict by file stem).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PROJECT_PCAPS = Path(__file__).resolve().parent.parent / "pcaps"

TRY = (
    'p = STUN(type="Binding Request") / make_attribute("SOFTWARE", value="hi")'
    ' / make_attribute("FINGERPRINT"); p.show2()',
    'r = pcaps["coturn-udp"][1][STUN]; r.get_attribute("XOR-MAPPED-ADDRESS")',
    "explain(r)   # byte by byte, the type's bits, why it amplifies",
)


def banner(loaded: dict[str, Any]) -> str:
    names = ", ".join(sorted(loaded)) or "none (no pcaps/ folder beside the package)"
    lines = [
        "stunscan shell: Scapy with the STUN layers (STUN, STUNClassic, ChannelData,"
        " make_attribute), proto (stunscan.protocol), decode, budget, advise, explain.",
        f"pcaps: {names}",
        "Three things to try:",
        *(f"  >>> {line}" for line in TRY),
    ]
    return "\n".join(lines)


def load_pcaps(folder: Path) -> dict[str, Any]:
    """Every capture of ``folder`` read with Scapy, by file stem."""
    from scapy.utils import rdpcap

    if not folder.is_dir():
        return {}
    return {
        path.stem: rdpcap(str(path))
        for path in sorted(folder.iterdir())
        if path.suffix in (".pcap", ".pcapng")
    }


def session(folder: Path = PROJECT_PCAPS) -> dict[str, Any]:
    """The names the console starts with."""
    from rich.console import Console

    import stunscan.layers as layers
    from stunscan import advice, budget, codec
    from stunscan import protocol as proto
    from stunscan.render.teach import explain_view

    console = Console()

    def explain(packet: Any, credentials: proto.Credentials | None = None) -> None:
        """What ``stunscan explain`` shows, for a STUN layer (found inside any packet)."""
        message = packet.getlayer(layers.STUN) or packet
        console.print(explain_view(message, credentials))

    names: dict[str, Any] = {name: getattr(layers, name) for name in layers.__all__}
    names.update(
        proto=proto,
        long_term_key=proto.long_term_key,
        short_term_key=proto.short_term_key,
        Credentials=proto.Credentials,
        decode=codec.decode,
        budget=budget.budget,
        advise=advice.advise,
        explain=explain,
        pcaps=load_pcaps(folder),
    )
    return names


def run(folder: Path = PROJECT_PCAPS) -> None:
    """Start the console (IPython if installed, else Python's own, as Scapy chooses)."""
    from scapy.main import interact

    names = session(folder)
    # Scapy's plain-Python console drops its ``mybanner``: print ours ourselves, once.
    print(banner(names["pcaps"]), flush=True)
    quiet = [] if sys.stdin.isatty() else ["-H"]
    interact(mydict=names, argv=["stunscan shell", *quiet])
