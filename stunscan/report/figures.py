"""Run the named queries of ``stunscan.report.queries`` and gather their answers as one
plain structure (dicts, lists, numbers, text): the terminal tables, the JSON and the HTML
page are all drawn from it, so they cannot disagree."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from stunscan.report import queries
from stunscan.report.inputs import Loaded, typed_payload

HISTOGRAM_WIDTH = 0.5
HISTOGRAM_TOP = 15.0
"""Bins of half a unit up to 15, then one bin for 15 and above."""
FAMILY_NAMES = {4: "IPv4", 6: "IPv6"}


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _number(value: Any, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def _day(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else None


def server_days(con: duckdb.DuckDBPyConnection, table: str, servers: str) -> None:
    """The view every figure reads: one row per server and day (``inputs.load`` merged the
    days that listed a server more than once)."""
    con.execute(queries.SERVER_DAYS.format(table=table, servers=servers))


def latest(con: duckdb.DuckDBPyConnection, table: str, hosts: str) -> None:
    """``hosts``: one row per host (ip, port, protocol), its latest row (``server_days``
    first)."""
    con.execute(queries.LATEST.format(table=table, hosts=hosts, payload=typed_payload("s")))


def figures(
    con: duckdb.DuckDBPyConnection, loaded: Loaded, top: int = 10, servers: str = "servers"
) -> dict[str, Any]:
    """Every figure of the report for the rows ``loaded`` put in its table."""
    server_days(con, loaded.table, servers)
    hosts = f"{servers}_hosts"
    latest(con, loaded.table, hosts)
    fill = {"servers": servers, "hosts": hosts, "limit": int(top)}
    families = [
        {
            "family": FAMILY_NAMES.get(row["family"], "?"),
            "servers": int(row["servers"]),
            "server_days": int(row["server_days"]),
            "mean_amplification": _number(row["mean_amplification"]),
            "median_amplification": _number(row["median_amplification"]),
            "max_amplification": _number(row["max_amplification"]),
        }
        for row in _rows(con, queries.FAMILIES.format(**fill))
    ]
    # the hosts table has one row per (ip, port, protocol): no second distinct count
    total = _rows(con, f"SELECT count(*) AS n FROM {hosts}")[0]["n"]
    percentiles = []
    for row in _rows(con, queries.PERCENTILES.format(**fill)):
        entry: dict[str, Any] = {"family": FAMILY_NAMES.get(row["family"], "?")}
        entry["min"] = _number(row["low"])
        for point, value in zip(queries.PERCENTILE_POINTS, row["values"], strict=True):
            entry[f"p{point}"] = _number(value)
        entry["max"] = _number(row["high"])
        percentiles.append(entry)
    histogram = [
        {
            "low": _number(row["low"]),
            "high": None if row["low"] >= HISTOGRAM_TOP else _number(row["low"] + HISTOGRAM_WIDTH),
            "ipv4": int(row["ipv4"]),
            "ipv6": int(row["ipv6"]),
        }
        for row in _rows(
            con,
            queries.HISTOGRAM.format(servers=servers, width=HISTOGRAM_WIDTH, top=HISTOGRAM_TOP),
        )
    ]

    def share(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            row["servers"] = int(row["servers"])
            row["share"] = _number(row["servers"] / total if total else 0.0, 4)
        return rows

    countries = share(_rows(con, queries.TOP_COUNTRIES.format(**fill)))
    ases = share(_rows(con, queries.TOP_ASES.format(**fill)))
    software = share(_rows(con, queries.TOP_SOFTWARE.format(**fill)))
    for row in software:
        row["mean_amplification"] = _number(row["mean_amplification"])
    ports = share(_rows(con, queries.PORTS.format(**fill)))
    fingerprint = {"present": 0, "absent": 0}
    for row in _rows(con, queries.FINGERPRINT.format(**fill)):
        fingerprint["present" if row["present"] else "absent"] = int(row["servers"])
    per_day = [
        {"day": _day(row["day"]), "ipv4": int(row["ipv4"]), "ipv6": int(row["ipv6"])}
        for row in _rows(con, queries.PER_DAY.format(**fill))
    ]
    result: dict[str, Any] = {
        "files": loaded.files,
        "rows": loaded.rows,
        "bad_rows": dict(loaded.bad),
        "missing_columns": loaded.missing_columns,
        "servers": int(total),
        "days": len(per_day),
        "families": families,
        "percentiles": percentiles,
        "histogram": {"width": HISTOGRAM_WIDTH, "top": HISTOGRAM_TOP, "bins": histogram},
        "top_countries": countries,
        "top_ases": ases,
        "top_software": software,
        "ports": ports,
        "fingerprint": fingerprint,
        "per_day": per_day,
    }
    if len(per_day) > 1:
        churn = _rows(con, queries.CHURN.format(**fill))[0]
        result["churn"] = {
            "first_day": _day(churn["first_day"]),
            "last_day": _day(churn["last_day"]),
            "new": int(churn["new"]),
            "gone": int(churn["gone"]),
            "still": int(churn["still"]),
        }
    return result


def latest_hosts(con: duckdb.DuckDBPyConnection, table: str, hosts: str) -> None:
    """One row per host (ip, port, protocol): its latest row."""
    server_days(con, table, f"{table}_servers")
    latest(con, table, hosts)


def compare(
    con: duckdb.DuckDBPyConnection, old: Loaded, new: Loaded, limit: int | None = None
) -> dict[str, Any]:
    """OLD against NEW host by host (each host's latest row on each side)."""
    latest_hosts(con, old.table, "old_hosts")
    latest_hosts(con, new.table, "new_hosts")
    hosts = _rows(con, queries.COMPARE.format(old="old_hosts", new="new_hosts"))
    counts = {"new": 0, "gone": 0, "changed": 0, "same": 0}
    for host in hosts:
        counts[host["status"]] += 1
        host["amplification_old"] = _number(host["amplification_old"])
        host["amplification_new"] = _number(host["amplification_new"])
    return {
        "old": old.files,
        "new": new.files,
        "counts": counts,
        "hosts": hosts if limit is None else hosts[:limit],
    }


def listed_hosts(con: duckdb.DuckDBPyConnection, loaded: Loaded) -> list[dict[str, Any]]:
    """The hosts a report lists, each with its latest row's figures (``stunscan verify``)."""
    latest_hosts(con, loaded.table, "listed_hosts")
    return _rows(con, queries.HOSTS.format(hosts="listed_hosts"))
