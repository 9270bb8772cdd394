"""What to change so a server amplifies less: recognise the server, then the setting that
drops each part of its answer a Binding success does not need.

All the knowledge is in two tables below, meant to be extended one line at a time:
:data:`SERVERS` (how a server is recognised: its SOFTWARE, or the order of its attributes
when it hides SOFTWARE) and :data:`SETTINGS` (server, part of the answer, the setting that
drops it). The settings for coturn were checked against coturn 4.6.1 on loopback by
``tests/test_budget_coturn.py``: each one's predicted drop is the drop measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from stunscan.budget import Budget
from stunscan.codec import Message

COTURN = "coturn"
STUND = "Vovida stund"
MS_ICE = "Microsoft ICE peer (MS-ICE2)"

SERVERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    # server, SOFTWARE pattern (regex, "" for none), attribute order that gives it away
    (COTURN, r"^Coturn-", ("XOR-MAPPED-ADDRESS", "MAPPED-ADDRESS", "RESPONSE-ORIGIN")),
    (STUND, r"^Vovida\.org", ("MAPPED-ADDRESS", "SOURCE-ADDRESS", "CHANGED-ADDRESS")),
    # seen in nDPI's capture: Skype/Teams peers answering each other's connectivity checks
    (MS_ICE, "", ("XOR-MAPPED-ADDRESS", "USERNAME")),
)

SETTINGS: tuple[tuple[str, str, str, str], ...] = (
    # server, part, setting (space-separated options, all needed), what it does
    (COTURN, "SOFTWARE", "--no-software-attribute", "hides the version (formerly --prod)"),
    (
        COTURN,
        "MAPPED-ADDRESS",
        "--no-stun-backward-compatibility",
        "XOR-MAPPED-ADDRESS only; RFC 3489 clients lose their answer",
    ),
    (COTURN, "OTHER-ADDRESS", "--no-rfc5780", "no NAT behaviour discovery"),
    (
        COTURN,
        "RESPONSE-ORIGIN",
        "--no-rfc5780 --response-origin-only-with-rfc5780",
        "RESPONSE-ORIGIN only with RFC 5780, which the first option turns off",
    ),
    (
        STUND,
        "*",
        "",
        "stund 0.97 has no option for its attributes (RFC 3489 ones, SOFTWARE): replace it"
        " (coturn with all four settings of this table answers in 32 bytes) or firewall it",
    ),
    (
        MS_ICE,
        "*",
        "",
        "an authenticated ICE connectivity check between two peers, not a public STUN"
        " server: no server setting applies",
    ),
)

GENERAL: tuple[str, ...] = (
    "offer STUN over TCP only (TCP can't be spoofed, so it can't reflect): the report's"
    " own mitigation",
    "if the server is not meant to be public, firewall 3478/udp (and 3479, 5349) from the Internet",
)


@dataclass(frozen=True, slots=True)
class Advice:
    """The settings for one answer, and the factor each would leave."""

    server: str | None
    recognised_by: str
    steps: tuple[tuple[str, str, str, float], ...]
    """(parts dropped, setting, what it does, factor after every step so far)."""
    unfixable: tuple[str, ...]
    """Removable parts no known setting drops."""
    notes: tuple[str, ...]
    general: tuple[str, ...]

    def lines(self) -> list[str]:
        who = f"{self.server} ({self.recognised_by})" if self.server else "server not recognised"
        out = [f"server: {who}"]
        out += [
            f"{setting or '(no setting)'}: drops {parts}; {what} -> {factor:.2f}x"
            for parts, setting, what, factor in self.steps
        ]
        out += [f"{part}: no known setting drops it" for part in self.unfixable]
        out += list(self.notes) + list(self.general)
        return out

    def as_json(self) -> dict[str, object]:
        return {
            "server": self.server,
            "recognised_by": self.recognised_by,
            "settings": [
                {"drops": parts, "setting": setting, "does": what, "factor_after": round(f, 2)}
                for parts, setting, what, f in self.steps
            ],
            "no_setting_for": list(self.unfixable),
            "notes": list(self.notes),
            "general": list(self.general),
        }


def recognise(message: Message) -> tuple[str | None, str]:
    """(server, how it was recognised) from SOFTWARE, else from the attributes' order."""
    software = message.get("SOFTWARE")
    text = software.decoded if software is not None and not software.problem else None
    names = tuple(a.name for a in message.attributes)
    for server, pattern, _ in SERVERS:
        if pattern and isinstance(text, str) and re.search(pattern, text):
            return server, "SOFTWARE"
    for server, _, shape in SERVERS:
        if names[: len(shape)] == shape:
            return server, "the order of its attributes"
    return None, ""


def settings_for(server: str) -> list[tuple[str, str, str]]:
    """(part, setting, what it does) rows of one server, in table order."""
    return [(part, setting, what) for s, part, setting, what in SETTINGS if s == server]


def dropped_by(server: str, options: set[str]) -> set[str]:
    """The parts a server leaves out when started with ``options`` (every row whose
    options are all among them): the prediction the coturn test checks."""
    return {
        part
        for part, setting, _ in settings_for(server)
        if setting and set(setting.split()) <= options
    }


def advise(message: Message, plan: Budget, tcp_answered: bool | None = None) -> Advice:
    """The settings that drop the removable parts of ``message``, one step at a time, with
    the factor left after each; ``tcp_answered`` is what ``probe --tcp`` found, if asked."""
    server, how = recognise(message)
    removable = {p.name for p in plan.removable}
    steps: list[tuple[str, str, str, float]] = []
    gone: set[str] = set()
    notes: list[str] = []
    for part, setting, what in settings_for(server) if server else []:
        if part == "*":
            notes.append(what)
            gone |= removable
            continue
        if part not in removable or part in gone:
            continue
        options = set(setting.split())
        newly = (dropped_by(server or "", options) & removable) - gone
        newly.add(part)
        gone |= newly
        steps.append((", ".join(sorted(newly)), setting, what, plan.factor_without(gone)))
    unfixable = tuple(sorted(removable - gone))
    if tcp_answered is True:
        notes.append("it answers over TCP already: UDP 3478 can be closed without losing STUN")
    elif tcp_answered is False:
        notes.append("it does not answer over TCP: enable STUN over TCP before closing UDP")
    return Advice(server, how, tuple(steps), unfixable, tuple(notes), GENERAL)
