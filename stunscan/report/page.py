"""The report's figures as one self-contained HTML page: tables, and charts drawn with
matplotlib (Agg) embedded as PNG ``data:`` URIs. No external CSS, script or font: the page
opens without a network. Every value from the CSVs is HTML-escaped; chart labels from the
data are drawn with mathtext off, so a ``$`` is a dollar sign, not a formula."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Sequence
from typing import Any

from stunscan.text import endpoint_text, printable

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#1d2330;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;margin:1.6em 0 .4em;
border-bottom:1px solid #d8dde6;padding-bottom:.2em}
table{border-collapse:collapse;margin:.3em 0 1em;font-size:.92em}
th,td{padding:.25em .8em;border-bottom:1px solid #eceff4;text-align:right}
th{background:#f3f5f9;font-weight:600}th:first-child,td:first-child{text-align:left}
td.text{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace;
overflow-wrap:anywhere;max-width:28em}
.muted{color:#687187}.warn{color:#9a5b00}
.grid{display:flex;flex-wrap:wrap;gap:2em}.grid>div{flex:1 1 320px}
img{max-width:100%;height:auto;border:1px solid #eceff4}
"""


def esc(value: Any) -> str:
    """Text for the page: escapes shown visibly, then HTML-escaped (quotes too)."""
    if value is None or value == "":
        return '<span class="muted">-</span>'
    return html.escape(printable(str(value)), quote=True)


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return '<span class="muted">-</span>'
    if isinstance(value, int):
        return f"{value:,}"
    return f"{float(value):,.{digits}f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], text: Sequence[int] = (0,)
) -> str:
    """Cells must already be safe HTML (made by esc / _number); columns ``text`` hold text
    (left, monospace), the others numbers."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="text">{c}</td>' if i in text else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _png(figure: Any) -> str:
    """A matplotlib figure as an <img> with a data: URI (then closed)."""
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot.close(figure)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="" src="data:image/png;base64,{data}">'


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    matplotlib.rcParams["font.size"] = 9
    from matplotlib import pyplot

    return pyplot


def histogram_chart(result: dict[str, Any]) -> str:
    pyplot = _pyplot()
    bins = result["histogram"]["bins"]
    width = result["histogram"]["width"]
    figure, axes = pyplot.subplots(figsize=(6.4, 3.2))
    lows = [b["low"] for b in bins]
    ipv4 = [b["ipv4"] for b in bins]
    ipv6 = [b["ipv6"] for b in bins]
    axes.bar(lows, ipv4, width=width * 0.9, align="edge", label="IPv4", color="#3b6fb6")
    axes.bar(lows, ipv6, width=width * 0.9, align="edge", bottom=ipv4, label="IPv6",
             color="#e08a2c")  # fmt: skip
    axes.set_xlabel(f"amplification (bins of {width:g}; the last holds "
                    f"{result['histogram']['top']:g} and above)")  # fmt: skip
    axes.set_ylabel("servers (per day)")
    axes.legend(frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def per_day_chart(result: dict[str, Any]) -> str:
    pyplot = _pyplot()
    import datetime as dt

    days = [dt.date.fromisoformat(r["day"]) for r in result["per_day"]]
    figure, axes = pyplot.subplots(figsize=(6.4, 3.2))
    axes.plot(days, [r["ipv4"] for r in result["per_day"]], marker="o", ms=3, label="IPv4",
              color="#3b6fb6")  # fmt: skip
    axes.plot(days, [r["ipv6"] for r in result["per_day"]], marker="o", ms=3, label="IPv6",
              color="#e08a2c")  # fmt: skip
    axes.set_ylabel("servers")
    axes.set_ylim(bottom=0)
    axes.legend(frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    from matplotlib import dates

    if len(days) <= 14:
        axes.xaxis.set_major_locator(dates.DayLocator())
    else:
        axes.xaxis.set_major_locator(dates.AutoDateLocator(minticks=4, maxticks=10))
    axes.xaxis.set_major_formatter(dates.DateFormatter("%Y-%m-%d"))
    figure.autofmt_xdate()
    return _png(figure)


def countries_chart(result: dict[str, Any]) -> str:
    pyplot = _pyplot()
    rows = list(reversed(result["top_countries"]))
    figure, axes = pyplot.subplots(figsize=(6.4, 0.35 * len(rows) + 0.8))
    labels = [printable(str(r["geo"]))[:24] or "(none)" for r in rows]
    axes.barh(range(len(rows)), [r["servers"] for r in rows], color="#3b6fb6")
    axes.set_yticks(range(len(rows)), labels)
    axes.set_xlabel("servers")
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def render(result: dict[str, Any], comparison: dict[str, Any] | None, limit: int) -> str:
    """The whole page."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Accessible STUN servers: stunscan report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Accessible STUN servers</h1>",
        f'<p class="muted">{result["rows"]:,} rows from {len(result["files"]):,} files;'
        f" {result['servers']:,} servers over {result['days']:,} days. Amplification is"
        " counted once per server (ip, port, protocol) per day.</p>",
    ]
    if result["bad_rows"]:
        bad = ", ".join(f"{n:,} {esc(reason)}" for reason, n in result["bad_rows"].items())
        parts.append(f'<p class="warn">Bad rows left out: {bad}.</p>')
    parts.append("<h2>Servers and amplification</h2>")
    parts.append(
        _table(
            ("family", "servers", "mean ampl.", "median", "max"),
            (
                (
                    esc(r["family"]),
                    _number(r["servers"]),
                    _number(r["mean_amplification"]),
                    _number(r["median_amplification"]),
                    _number(r["max_amplification"]),
                )
                for r in result["families"]
            ),
            (),
        )
    )
    points = ("min", "p5", "p25", "p50", "p75", "p90", "p95", "p99", "max")
    parts.append(
        _table(
            ("family", *points),
            ((esc(r["family"]), *(_number(r[p]) for p in points)) for r in result["percentiles"]),
            (),
        )
    )
    if result["histogram"]["bins"]:
        parts.append("<h2>Amplification distribution</h2>" + histogram_chart(result))
    if len(result["per_day"]) > 1:
        parts.append("<h2>Servers per day</h2>" + per_day_chart(result))
        churn = result["churn"]
        parts.append(
            f"<p>{esc(churn['first_day'])} to {esc(churn['last_day'])}: {churn['new']:,} new,"
            f" {churn['gone']:,} gone, {churn['still']:,} still present.</p>"
        )
    parts.append("<h2>Top countries</h2>")
    if result["top_countries"]:
        parts.append(countries_chart(result))
    parts.append('<div class="grid"><div>')
    parts.append(_ranking(("geo", "servers", "share"), "geo", result["top_countries"]))
    parts.append("</div><div><h2>Top ASes</h2>")
    parts.append(_ranking(("asn", "servers", "share"), "asn", result["top_ases"]))
    parts.append("</div></div><h2>Top SOFTWARE</h2>")
    parts.append(
        _table(
            ("SOFTWARE", "servers", "share", "mean ampl."),
            (
                (
                    esc(r["software"]),
                    _number(r["servers"]),
                    _share(r["share"]),
                    _number(r["mean_amplification"]),
                )
                for r in result["top_software"]
            ),
        )
    )
    parts.append("<h2>Ports, protocols, FINGERPRINT</h2>")
    fingerprint = result["fingerprint"]
    total = fingerprint["present"] + fingerprint["absent"]
    rows = [
        (esc(r["port"]), esc(r["protocol"]), _number(r["servers"]), _share(r["share"]))
        for r in result["ports"]
    ]
    rows += [
        (f"FINGERPRINT {name}", "", _number(n), _share(n / total if total else None))
        for name, n in fingerprint.items()
    ]
    parts.append(_table(("port", "protocol", "servers", "share"), rows, (0, 1)))
    if len(result["per_day"]) > 1:
        parts.append("<h2>Servers per day</h2>")
        parts.append(
            _table(
                ("day", "IPv4", "IPv6"),
                (
                    (esc(r["day"]), _number(r["ipv4"]), _number(r["ipv6"]))
                    for r in result["per_day"]
                ),
            )
        )
    if comparison is not None:
        parts.append(_compare(comparison, limit))
    parts.append(
        '<p class="muted">Files: ' + ", ".join(esc(name) for name in result["files"]) + "</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _ranking(headers: Sequence[str], key: str, rows: list[dict[str, Any]]) -> str:
    return _table(headers, ((esc(r[key]), _number(r["servers"]), _share(r["share"])) for r in rows))


def _compare(comparison: dict[str, Any], limit: int) -> str:
    counts = comparison["counts"]
    head = (
        f"<h2>OLD against NEW</h2><p>{counts['new']:,} new, {counts['gone']:,} gone,"
        f" {counts['changed']:,} changed, {counts['same']:,} same.</p>"
    )
    differing = [h for h in comparison["hosts"] if h["status"] != "same"]
    hosts = differing[:limit]
    if len(differing) > limit:
        head += f'<p class="muted">The first {limit:,} shown; --json lists them all.</p>'
    return head + _table(
        ("host", "protocol", "status", "ampl. old", "ampl. new", "SOFTWARE old", "SOFTWARE new"),
        (
            (
                esc(endpoint_text(str(h["ip"]), h["port"])),
                esc(h["protocol"]),
                esc(h["status"]),
                _number(h["amplification_old"]),
                _number(h["amplification_new"]),
                esc(h["software_old"]),
                esc(h["software_new"]),
            )
            for h in hosts
        ),
        (0, 1, 2, 5, 6),
    )
