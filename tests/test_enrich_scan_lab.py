"""``stunscan scan`` with every enrichment column filled, end to end, in the scan lab.

The lab (tests/scan_lab.py) runs coturn and stund on documentation addresses; here dnsmasq
runs in the lab's namespace too, on the lab's side of the link (192.0.2.1), so only the
scanner's namespace can reach it, with a PTR record for each server. The scan is given
MaxMind DB files written for these ranges (tests/mmdb_files.py), a sector map, ``--ptr``
and that resolver: every row must have every column, and the resolver's log must show the
queries coming from the scanner.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dns_server import READY, DnsServer, dnsmasq
from dns_server import available as dns_available
from mmdb_files import RANGES, write
from scan_lab import (
    COTURN_V4,
    COTURN_V6,
    EXPECTED_V4,
    EXPECTED_V6,
    LAB_V4,
    MOVED,
    SCANNER_V4,
    STUND_ALTERNATE,
    STUND_PRIMARY,
    Lab,
    available,
    scan_lab,
)

pytestmark = pytest.mark.skipif(
    not (available() and dns_available()), reason="needs root, iproute2, coturn, stund, dnsmasq"
)

NAMES = {
    COTURN_V4: "coturn.lab.example",
    COTURN_V6: "coturn6.lab.example",
    STUND_PRIMARY: "stund.lab.example",
    STUND_ALTERNATE: "=stund-alt.lab.example",
    MOVED: "moved.lab.example",
}
DNS_PORT = 5353
READY_CHECK = """
import sys, dns.message, dns.query, dns.reversename
query = dns.message.make_query(dns.reversename.from_address(sys.argv[1]), "PTR")
dns.query.udp(query, sys.argv[2], port=int(sys.argv[3]), timeout=0.3)
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[Lab, DnsServer]]:
    with scan_lab() as running, dnsmasq(NAMES, LAB_V4, DNS_PORT, tuple(running.in_lab())) as dns:
        deadline = time.monotonic() + 10
        while True:
            check = running.in_scanner(sys.executable, "-c", READY_CHECK, READY, LAB_V4,
                                       str(DNS_PORT))  # fmt: skip
            if subprocess.run(check, capture_output=True).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("dnsmasq in the lab does not answer")
            time.sleep(0.1)
        yield running, dns


def scan_rows(
    running: Lab, out_csv: Path, *options: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, str]]]:
    """A scan of the lab's targets from its scanner namespace, with ``options``: the run,
    and the rows of its CSV (the run must have succeeded)."""
    command = [
        sys.executable, "-m", "stunscan", "scan", "203.0.113.0/26", "2001:db8:1::/120",
        "--allow", "203.0.113.0/24", "--allow", "2001:db8::/32", "--rate", "2000",
        "--cooldown", "1", "--source-port", "40000", "--csv", str(out_csv), *options,
    ]  # fmt: skip
    result = subprocess.run(running.in_scanner(*command), capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    with out_csv.open(newline="", encoding="utf-8") as handle:
        return result, list(csv.DictReader(handle))


def test_a_scan_fills_every_column(lab: tuple[Lab, DnsServer], tmp_path: Path) -> None:
    running, dns = lab
    city, asn = write(tmp_path / "city.mmdb", "city"), write(tmp_path / "asn.mmdb", "asn")
    sectors = tmp_path / "sectors.csv"
    sectors.write_text("asn,naics,sector\n64500,517311,Hosting\n64501,517312,Wireless\n")
    out_json = tmp_path / "s.jsonl"
    result, rows = scan_rows(
        running, tmp_path / "s.csv", "--seed", "3", "--json", str(out_json), "--geoip",
        str(city), "--geoip", str(asn), "--sector-map", str(sectors), "--ptr", "--resolver",
        f"{LAB_V4}:{DNS_PORT}", "--ptr-timeout", "2",
    )  # fmt: skip
    assert {row["ip"] for row in rows} == EXPECTED_V4 | EXPECTED_V6
    for row in rows:
        place = RANGES["2001:db8:1::/64" if ":" in row["ip"] else "203.0.113.0/24"]
        name = NAMES[row["ip"]]
        assert row["hostname"] == ("'" + name if name.startswith("=") else name)
        assert row["hostname_source"] == "ptr"
        assert (row["asn"], row["geo"], row["region"], row["city"]) == (
            str(place["asn"]), place["geo"], place["region"], place["city"])  # fmt: skip
        assert (row["naics"], row["sector"]) == (
            ("517312", "Wireless") if ":" in row["ip"] else ("517311", "Hosting"))  # fmt: skip
        enriched = ("hostname", "asn", "geo", "region", "city", "naics", "hostname_source",
                    "sector")  # fmt: skip
        assert all(row[column] for column in enriched), row  # every one filled
    details = {d["ip"]: d for d in map(json.loads, out_json.read_text().splitlines())}
    assert details[COTURN_V4]["hostname"] == NAMES[COTURN_V4]
    assert details[COTURN_V4]["as_org"] == "Example Net One"
    assert details[COTURN_V6]["city"] == "City Six"
    summary = " ".join(result.stdout.replace("│", " ").split())
    assert "top countries ZZ (4), XA (1)" in summary
    assert "AS64500 Example Net One (4)" in summary
    asked = [name for name in dns.queries() if name != "254.2.0.192.in-addr.arpa"]
    assert len(asked) == len(NAMES)  # each server once, though stund's is on two ports
    log = dns.log.read_text()
    assert f"from {SCANNER_V4}" in log


def test_place_data_alone_goes_through_the_writer(
    lab: tuple[Lab, DnsServer], tmp_path: Path
) -> None:
    """Without --ptr but with place data for the targets, the writer process fills the
    columns per server (one lookup per address, though stund answers on two)."""
    running, _dns = lab
    asn = write(tmp_path / "asn.mmdb", "asn")
    result, rows = scan_rows(
        running, tmp_path / "s.csv", "-p", "3478,3479", "--geoip", str(asn), "--table-rows", "3"
    )
    assert {row["ip"] for row in rows} >= EXPECTED_V4 | EXPECTED_V6
    for row in rows:
        place = RANGES["2001:db8:1::/64" if ":" in row["ip"] else "203.0.113.0/24"]
        assert (row["asn"], row["geo"], row["hostname"], row["naics"]) == (
            str(place["asn"]), "", "", "0")  # fmt: skip
    summary = " ".join(result.stdout.replace("│", " ").split())
    assert "AS64500 Example Net One" in summary and "asn from GeoLite2-ASN" in summary
