"""A probed host as data for scripts: the Shadowserver row and a JSON object.

The row is the one the report would hold for this server: the answer to the report's own
probe if it was sent, else to the first plain Binding that was answered, so that a CSV from
``stunscan probe`` lines up with one from ``stunscan scan`` or Shadowserver's feed.
"""

from __future__ import annotations

from typing import Any

from stunscan.enrich.columns import Enrichment
from stunscan.jsonshape import address_json
from stunscan.probe import HostReport, VariantResult
from stunscan.probe.exchange import Exchange
from stunscan.probe.why import exchange_budget, why
from stunscan.record import Record
from stunscan.text import endpoint_text

ROW_PREFERENCE = ("shadowserver", "binding", "fingerprint", "software", "classic")


def record_of(exchange: Exchange) -> Record | None:
    """The report's row for one answered exchange."""
    if exchange.message is None:
        return None
    host, port = exchange.target
    client = endpoint_text(*exchange.local) if exchange.local else ""
    return Record(
        exchange.answered_at,
        host,
        port,
        exchange.transport,
        exchange.message,
        len(exchange.answer),
        len(exchange.request),
        client,
    )


def report_row(report: HostReport) -> Record | None:
    """The one row that stands for this host in the Shadowserver CSV."""
    row = _chosen_row(report)
    if row is not None:
        row.enrichment = report.enrichment
    return row


def _chosen_row(report: HostReport) -> Record | None:
    answered = [r for r in report.results if r.exchange.answered]
    for name in ROW_PREFERENCE:
        for result in answered:
            if result.variant == name and result.exchange.transport == "udp":
                return record_of(result.exchange)
    return record_of(answered[0].exchange) if answered else None


def _endpoint(endpoint: tuple[str, int] | None) -> dict[str, Any] | None:
    return None if endpoint is None else address_json(*endpoint)


def _result_json(result: VariantResult, enrichment: Enrichment | None) -> dict[str, Any]:
    exchange = result.exchange
    record = record_of(exchange)
    if record is not None:
        record.enrichment = enrichment
    out: dict[str, Any] = {
        "variant": result.variant,
        "transport": exchange.transport,
        "to": _endpoint(exchange.target),
        "request_size": len(exchange.request),
        "sent": exchange.sent,
        "answered": exchange.answered,
        "failure": exchange.failure,
        "stray": dict(exchange.stray),
        "rtt_ms": None if exchange.rtt is None else round(exchange.rtt * 1000, 3),
        "amplification": None
        if exchange.amplification is None
        else round(exchange.amplification, 2),
        "answered_from": _endpoint(exchange.source),
        "moved": exchange.moved,
        "response": None if record is None else record.as_json(),
    }
    plan = exchange_budget(exchange)
    if plan is not None:
        out["budget"] = plan.as_json()
    return out


def host_json(report: HostReport) -> dict[str, Any]:
    """Everything about one host: each exchange, the worst case, NAT behaviour, verdict."""
    worst = report.worst()
    out: dict[str, Any] = {
        "host": report.target.given,
        "ip": report.target.address,
        "port": report.target.port,
        "server": address_json(report.target.address, report.target.port),
        "answered": report.answered,
        "verdict": report.verdict(),
        "worst": None
        if worst is None
        else {
            "variant": worst.variant,
            "amplification": round(worst.exchange.amplification or 0.0, 2),
            "request_size": len(worst.exchange.request),
            "response_size": len(worst.exchange.answer),
        },
        "results": [_result_json(r, report.enrichment) for r in report.results],
    }
    reason = why(report)
    if reason is not None:
        out["advice"] = reason.advice.as_json()
    if report.enrichment is not None:
        out.update(enrichment_json(report.enrichment))
    if report.nat is not None:
        nat = report.nat
        out["nat"] = {
            "nat": nat.nat,
            "mapped": _address(nat.mapped),
            "other_address": _address(nat.other),
            "mapping": nat.mapping,
            "filtering": nat.filtering,
            "notes": nat.notes,
            "tests": [
                {"test": label, **_result_json(VariantResult(f"nat {label}", exchange), None)}
                for label, exchange in nat.tests
            ],
        }
    return out


def _address(address: Any) -> dict[str, Any] | None:
    """A decoded STUN address (family, ip, port) in the shared JSON shape."""
    if address is None:
        return None
    return {"family": address.family, **address_json(address.address, address.port)}


def enrichment_json(enrichment: Enrichment) -> dict[str, Any]:
    """The host's enrichment columns by name (as the report's row names them), AS
    organisation included; an empty one is null, as in every row's JSON."""
    names = ("hostname", "asn", "geo", "region", "city", "naics", "hostname_source", "sector")
    out: dict[str, Any] = dict(zip(names, enrichment.cells(), strict=True))
    out.update(enrichment.as_json())
    return {name: value if value != "" else None for name, value in out.items()}
