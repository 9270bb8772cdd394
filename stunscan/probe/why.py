"""Why a probed host amplifies: the budget of its worst UDP answer, and the advice for it
(what ``probe --tcp`` found included)."""

from __future__ import annotations

from dataclasses import dataclass

from stunscan import protocol as proto
from stunscan.advice import Advice, advise
from stunscan.budget import Budget, budget
from stunscan.probe import HostReport, VariantResult
from stunscan.probe.exchange import Exchange


@dataclass(frozen=True, slots=True)
class Why:
    """The worst answer, where its bytes go, and how to lower it."""

    result: VariantResult
    budget: Budget
    advice: Advice


def exchange_budget(exchange: Exchange) -> Budget | None:
    """The budget of one answered exchange, against the request actually sent."""
    if exchange.message is None:
        return None
    return budget(
        exchange.message,
        len(exchange.request),
        request_fingerprint=proto.check_fingerprint(exchange.request) is not None,
        response_size=len(exchange.answer),
    )


def why(report: HostReport) -> Why | None:
    """For the worst UDP answer (the one a reflector attack would use), if any."""
    worst = report.worst()
    if worst is None or worst.exchange.message is None:
        return None
    plan = exchange_budget(worst.exchange)
    if plan is None:
        return None
    tcp = [r for r in report.results if r.exchange.transport == "tcp"]
    tcp_answered = any(r.exchange.answered for r in tcp) if tcp else None
    return Why(worst, plan, advise(worst.exchange.message, plan, tcp_answered))
