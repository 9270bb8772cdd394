"""Enrichment: MaxMind DB files of every schema, the embedded default, the sector map,
reverse DNS against a real dnsmasq, and the columns in pcap and probe output.

The MaxMind DB files are written here (tests/mmdb_files.py: documentation ranges,
private-use AS numbers). The DNS server is Debian's dnsmasq on a free loopback port
(tests/dns_server.py). Every lookup a test makes names its resolver; one test watches a
whole run (audit hooks on every socket and every file opened) to prove that nothing else
is asked and /etc/resolv.conf is never read.
"""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dns_server import DnsServer, available, dnsmasq
from lab_servers import LabServer, coturn
from mmdb_files import RANGES, V4_OTHER, V4_SERVER, V6_SERVER, write
from typer.testing import CliRunner

from stunscan.cli import app
from stunscan.enrich import mmdb
from stunscan.enrich.columns import EMPTY_COLUMNS, Enrichment, Place, fill_line
from stunscan.enrich.embedded import EmbeddedData, data_file
from stunscan.enrich.mmdb import AREA, ASN, GEO, DatabaseError, open_database
from stunscan.enrich.places import Places
from stunscan.enrich.ptr import MISSING, NAME, TIMEOUT, PtrResolver, ResolverError, parse_resolver
from stunscan.enrich.sectors import SectorMap, SectorMapError
from stunscan.record import csv_line, enrich_cells

runner = CliRunner()
needs_dnsmasq = pytest.mark.skipif(not available(), reason="needs dnsmasq (README test command)")

HOSTILE_NAMES = {
    "203.0.113.11": "=cmd|' /C calc'!A0.example",
    "203.0.113.12": "[bold]owned[/bold].example",
    "203.0.113.13": 'a,b"c.example',
    "203.0.113.14": "\\033[31mred.example",
}
NAMES = {V4_SERVER: "node01.example.com", V6_SERVER: "node06.example.com", **HOSTILE_NAMES}
PUBLIC = ["8.8.8.8", "1.1.1.1", "9.9.9.9", "193.0.14.129", "2001:4860:4860::8888",
          "2606:4700:4700::1111", "2001:7fd::1"]  # fmt: skip
"""Public addresses looked up in the embedded data (local tables; nothing is sent)."""


def expected(ip: str, *kinds: str) -> Place:
    """What a file providing ``kinds`` must say of ``ip`` (from tests/mmdb_files.py)."""
    import ipaddress

    for network, place in RANGES.items():
        if ipaddress.ip_address(ip) in ipaddress.ip_network(network):
            return Place(
                place["geo"] if GEO in kinds else "",
                place["region"] if AREA in kinds else "",
                place["city"] if AREA in kinds else "",
                place["asn"] if ASN in kinds else None,
                place["as_org"] if ASN in kinds else "",
            )
    return Place()


# --------------------------------------------------------------------------- MaxMind DB files


@pytest.mark.parametrize(
    ("schema", "kinds"),
    [
        ("city", (GEO, AREA)),
        ("country", (GEO,)),
        ("asn", (ASN,)),
        ("ipinfo", (GEO, ASN)),
        ("iplocation", (GEO, AREA)),
    ],
)
def test_each_schema_gives_its_columns_for_ipv4_and_ipv6(
    tmp_path: Path, schema: str, kinds: tuple[str, ...]
) -> None:
    database = open_database(write(tmp_path / "data", schema))
    assert database.provides == kinds
    for ip in (V4_SERVER, V6_SERVER, V4_OTHER):
        assert database.place(ip) == expected(ip, *kinds)
    assert database.place("192.0.2.1") == Place()  # in no range of the file


def test_a_file_is_known_by_its_metadata_and_fields_not_its_name(tmp_path: Path) -> None:
    misnamed = open_database(write(tmp_path / "GeoLite2-City.mmdb", "asn"))
    assert misnamed.database_type == "GeoLite2-ASN" and misnamed.provides == (ASN,)
    # a type we do not know: the records' fields decide
    unknown = open_database(write(tmp_path / "x.mmdb", "city", database_type="Acme-Geo"))
    assert unknown.provides == (GEO, AREA)
    # DB-IP's names for GeoIP2's schema
    dbip = open_database(write(tmp_path / "y", "asn", database_type="DBIP-ASN-Lite"))
    assert dbip.provides == (ASN,)


def test_city_and_asn_files_in_a_folder_fill_every_column(tmp_path: Path) -> None:
    write(tmp_path / "a.mmdb", "asn")
    write(tmp_path / "b.mmdb", "country")
    write(tmp_path / "c.mmdb", "city")
    (tmp_path / "README.txt").write_text("not a database\n")
    places = Places.find([tmp_path])
    assert places.databases[0].provides == (GEO, AREA)  # the richest first
    assert places.embedded is None  # every column has a file
    for ip in (V4_SERVER, V6_SERVER):
        assert places.place(ip) == expected(ip, GEO, AREA, ASN)
    assert "asn from GeoLite2-ASN" in places.note() and "geoip2fast" not in places.note()


def test_an_ipv4_only_file_answers_nothing_for_ipv6(tmp_path: Path) -> None:
    database = open_database(write(tmp_path / "v4", "asn", ip_version=4))
    assert database.place(V6_SERVER) == Place()
    assert database.place(V4_SERVER) == expected(V4_SERVER, ASN)


def test_environment_and_named_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    city = write(tmp_path / "city.mmdb", "city")
    monkeypatch.setenv("STUNSCAN_GEOIP", str(city))
    assert [d.path for d in Places.find(None).databases] == [city]
    asn = write(tmp_path / "asn.mmdb", "asn")
    assert [d.path for d in Places.find([asn]).databases] == [asn]  # --geoip first


@pytest.mark.parametrize("kind", ["missing", "text", "corrupt", "empty folder"])
def test_bad_geoip_paths_are_one_line_errors(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.mmdb"
    if kind == "text":
        path.write_text("hello\n")
    elif kind == "corrupt":  # the metadata marker, and garbage around it
        path.write_bytes(b"\x00" * 100 + mmdb.METADATA_MARKER + b"\xff" * 50)
    elif kind == "empty folder":
        path.mkdir()
    with pytest.raises(DatabaseError) as caught:
        Places.find([path])
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    capture = tmp_path / "none.pcap"
    result = runner.invoke(app, ["pcap", str(capture), "--geoip", str(path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("stunscan: ") and result.stderr.count("\n") == 1


def test_hostile_record_values_are_blank_not_errors() -> None:
    assert mmdb.place_of(["not", "a", "map"]) == Place()
    odd = {
        "country": {"iso_code": 7},
        "subdivisions": "x",
        "city": {"names": []},
        "autonomous_system_number": "AS99999999999",
        "asn": True,
    }
    assert mmdb.place_of(odd) == Place()


def test_special_purpose_agrees_with_ipaddress() -> None:
    """The fast check against Python's own is_global on random addresses (multicast and
    the ranges IANA added since, 5f00::/16 and 6to4, are special here)."""
    import ipaddress
    import random

    from stunscan.special import is_special

    chance = random.Random(5)
    numbers = [(4, chance.randrange(1 << 32)) for _ in range(20000)]
    numbers += [(6, (0x2001 << 112) + chance.randrange(1 << 112)) for _ in range(5000)]
    numbers += [(6, chance.randrange(1 << 128)) for _ in range(5000)]
    for version, number in numbers:
        address = ipaddress.IPv4Address(number) if version == 4 else ipaddress.IPv6Address(number)
        if address.is_multicast or str(address).startswith(("5f00:", "2002:")):
            assert is_special(str(address))
            continue
        assert is_special(str(address)) == (not address.is_global), address
    assert is_special("not an address") and not is_special("8.8.8.8")


# --------------------------------------------------------------------------- embedded default


def test_the_embedded_default_is_geoip2fasts_own_answer() -> None:
    """No MaxMind DB: geo (and the AS name) from geoip2fast's bundled file, IPv4 and IPv6,
    as geoip2fast itself answers; no AS number."""
    places = Places([], EmbeddedData())
    ours = {ip: places.place(ip) for ip in PUBLIC}
    from geoip2fast import GeoIP2Fast

    direct = GeoIP2Fast(geoip2fast_data_file=str(data_file()))
    for ip, place in ours.items():
        found = direct.lookup(ip)
        assert (place.geo, place.as_org) == (found.country_code, found.asn_name), ip
        assert place.asn is None and not place.region and not place.city
    assert any(ours[ip].geo for ip in PUBLIC if ":" in ip), "IPv6 must be covered"
    assert any(ours[ip].geo for ip in PUBLIC if ":" not in ip)
    assert places.place("192.0.2.1") == Place() and places.place("10.1.2.3") == Place()
    note = places.note()
    assert "geoip2fast" in note and "CC BY-SA 4.0" in note and "ASN" in note


def _capture(path: Path, servers: list[str], software: str = "lab") -> Path:
    """A pcap of one Binding request and success response per server (a file: nothing is
    sent anywhere)."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    from stunscan.layers import STUN, make_attribute

    packets = []
    for number, server in enumerate(servers):
        client = "2001:db8:ffff::2" if ":" in server else "192.0.2.2"
        layer = IPv6 if ":" in server else IP
        tid = bytes([number]) * 12
        request = STUN(type="Binding Request", transaction_id=tid)
        response = STUN(
            type="Binding Success Response", transaction_id=tid,
            attributes=[make_attribute("XOR-MAPPED-ADDRESS", address=client, port=40000),
                        make_attribute("SOFTWARE", value=software)],
        )  # fmt: skip
        ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        packets.append(ether / layer(src=client, dst=server) / UDP(sport=40000, dport=3478)
                       / request)  # fmt: skip
        packets.append(ether / layer(src=server, dst=client) / UDP(sport=3478, dport=40000)
                       / response)  # fmt: skip
    wrpcap(str(path), packets)
    return path


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_pcap_with_no_database_fills_geo_from_the_embedded_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STUNSCAN_GEOIP", raising=False)
    monkeypatch.setattr(mmdb, "DEFAULT_FOLDERS", (str(tmp_path / "nothing-here"),))
    capture = _capture(tmp_path / "public.pcap", ["8.8.8.8", "2001:4860:4860::8888"])
    out = tmp_path / "rows.csv"
    result = runner.invoke(app, ["pcap", str(capture), "--csv", str(out)])
    assert result.exit_code == 0, result.output
    from geoip2fast import GeoIP2Fast

    direct = GeoIP2Fast(geoip2fast_data_file=str(data_file()))
    rows = _csv_rows(out.read_text())
    assert len(rows) == 2
    for row in rows:
        assert row["geo"] == direct.lookup(row["ip"]).country_code != ""
        assert row["asn"] == "" and row["naics"] == "0" and row["sector"] == ""
    summary = result.stdout
    assert summary.count("ASN MaxMind DB") == 1 and "top countries" in summary


def test_no_geoip_leaves_the_place_columns_empty(tmp_path: Path) -> None:
    capture = _capture(tmp_path / "public.pcap", ["8.8.8.8"])
    city = write(tmp_path / "c.mmdb", "city")
    result = runner.invoke(app, ["pcap", str(capture), "--csv", "-", "--no-geoip",
                                 "--geoip", str(city)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = _csv_rows(result.stdout.split("╭")[0])
    assert (row["geo"], row["asn"], row["region"], row["city"]) == ("", "", "", "")
    assert "no place data (--no-geoip)" in result.stderr or "--no-geoip" in result.output


# --------------------------------------------------------------------------- sector map


def test_pcap_with_files_and_sector_map_fills_every_column_but_hostname(tmp_path: Path) -> None:
    city, asn = write(tmp_path / "c.mmdb", "city"), write(tmp_path / "a.mmdb", "asn")
    sectors = tmp_path / "sectors.csv"
    sectors.write_text(
        "asn,naics,sector\n"
        'AS64500,517311,"Communications, Service Provider, and Hosting Service"\n'
        "64501,541512,IT Services\n"
    )
    capture = _capture(tmp_path / "lab.pcap", [V4_SERVER, V6_SERVER, V4_OTHER])
    out, lines = tmp_path / "rows.csv", tmp_path / "rows.jsonl"
    result = runner.invoke(app, ["pcap", str(capture), "--geoip", str(city), "--geoip", str(asn),
                                 "--sector-map", str(sectors), "--csv", str(out),
                                 "--json", str(lines)])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row["ip"]: row for row in _csv_rows(out.read_text())}
    for ip in (V4_SERVER, V6_SERVER, V4_OTHER):
        place = expected(ip, GEO, AREA, ASN)
        row = rows[ip]
        cells = (row["geo"], row["region"], row["city"], row["asn"])
        assert cells == (place.geo, place.region, place.city, str(place.asn))
        assert row["hostname"] == row["hostname_source"] == ""  # --ptr is off in pcap
    assert (rows[V4_SERVER]["naics"], rows[V4_SERVER]["sector"]) == (
        "517311", "Communications, Service Provider, and Hosting Service")  # fmt: skip
    assert (rows[V6_SERVER]["naics"], rows[V6_SERVER]["sector"]) == ("541512", "IT Services")
    assert (rows[V4_OTHER]["naics"], rows[V4_OTHER]["sector"]) == ("0", "")  # not in the map
    raw = out.read_text()
    assert '"City, One"' in raw and ",'=Formula Org" not in raw  # as_org is JSON only
    details = {d["ip"]: d for d in map(json.loads, lines.read_text().splitlines())}
    assert details[V4_SERVER]["as_org"] == "Example Net One"
    assert details[V4_SERVER]["asn"] == "64500" and details[V4_SERVER]["city"] == "City, One"
    table = result.stdout
    assert "AS64500 Example Net One" in table and "top ASes" in table and "ZZ (1)" in table


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("asn,sector\n1,x\n", "no naics column"),
        ("asn,naics,sector\nAS-x,1,x\n", "not an AS number"),
        ("asn,naics,sector\n64500,abc,x\n", "not a NAICS code"),
        ("asn,naics,sector\n64500\n", "line 2"),
    ],
)
def test_bad_sector_maps_are_one_line_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(content)
    with pytest.raises(SectorMapError, match=message):
        SectorMap.read(path)
    result = runner.invoke(app, ["pcap", str(tmp_path), "--sector-map", str(path)])
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1


# --------------------------------------------------------------------------- the CSV cells


@pytest.mark.parametrize(
    "enrichment",
    [
        Enrichment(Place("ZZ", "R", "C", 64500, "Org"), "node.example", "ptr", 517311, "S"),
        Enrichment(Place("ZZ", "Région, Est", 'Q"uote', None, ""), "=1+2", "ptr", 0, "@x"),
        Enrichment(Place("", "", "", None, ""), "-rm", "", 0, "a\x1b[31mb"),
    ],
)
def test_the_scan_writers_line_is_the_records_line(enrichment: Enrichment) -> None:
    """The scan's writer puts an answer's columns into its ready-made line; the record's
    writer makes the whole row from cells: the same line, defused alike."""
    cells = ["2024-01-01 00:00:00", "medium", "203.0.113.10", "udp", "3478"]
    cells += ["", "stun", "", "", "", "", "", "", ""] + ["ab"] * 4 + ["x"] * 10
    plain = csv_line(cells)
    assert EMPTY_COLUMNS in plain
    assert fill_line(plain, enrichment.csv_text()) == csv_line(enrich_cells(cells, enrichment))


# --------------------------------------------------------------------------- reverse DNS


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    if not available():
        pytest.skip("needs dnsmasq")
    with dnsmasq({**NAMES, "127.0.0.1": "stun.lab.example"}) as server:
        yield server


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A UDP port on loopback that takes queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@needs_dnsmasq
def test_ptr_name_missing_timeout_and_cache(dns: DnsServer, silent_port: int) -> None:
    resolver = PtrResolver((dns.host, dns.port), timeout=1.0)
    silent = PtrResolver(("127.0.0.1", silent_port), timeout=0.3)
    try:
        found = resolver.lookup(V4_SERVER)
        gone = resolver.lookup("192.0.2.99")
        assert found is not None and gone is not None
        assert found.result(5).status == NAME and found.result().name == NAMES[V4_SERVER]
        assert gone.result(5).status == MISSING  # NXDOMAIN
        assert resolver.lookup(V4_SERVER) is found  # cached, negative answers too
        assert resolver.lookup("192.0.2.99") is gone
        six = resolver.lookup(V6_SERVER)
        assert six is not None and six.result(5).name == NAMES[V6_SERVER]
        started = time.monotonic()
        late = silent.lookup(V4_SERVER)
        assert late is not None and late.result(5).status == TIMEOUT
        assert 0.25 < time.monotonic() - started < 3
    finally:
        resolver.close()
        silent.close()
    asked = dns.queries()
    assert asked.count("10.113.0.203.in-addr.arpa") == 1 and "99.2.0.192.in-addr.arpa" in asked


def test_resolver_option_forms() -> None:
    assert parse_resolver("192.0.2.53") == ("192.0.2.53", 53)
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver("[::1]:5353") == ("::1", 5353)
    assert parse_resolver("2001:db8::53") == ("2001:db8::53", 53)
    for bad in ("dns.example", "127.0.0.1:0", "[::1", "127.0.0.1:x"):
        with pytest.raises(ResolverError):
            parse_resolver(bad)
    result = runner.invoke(app, ["pcap", "x.pcap", "--ptr", "--resolver", "nameserver"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1


@needs_dnsmasq
def test_pcap_ptr_fills_hostname_and_defuses_hostile_names(tmp_path: Path, dns: DnsServer) -> None:
    servers = [V4_SERVER, V6_SERVER, *HOSTILE_NAMES, "192.0.2.99"]
    capture = _capture(tmp_path / "lab.pcap", servers)
    out = tmp_path / "rows.csv"
    result = runner.invoke(
        app, ["pcap", str(capture), "--ptr", "--resolver", dns.resolver, "--csv", str(out)],
        env={"COLUMNS": "250"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row["ip"]: row for row in _csv_rows(out.read_text())}
    assert rows[V4_SERVER]["hostname"] == NAMES[V4_SERVER]
    assert rows[V4_SERVER]["hostname_source"] == rows[V6_SERVER]["hostname_source"] == "ptr"
    assert rows[V6_SERVER]["hostname"] == NAMES[V6_SERVER]
    assert (rows["192.0.2.99"]["hostname"], rows["192.0.2.99"]["hostname_source"]) == ("", "")
    # a formula defused (dnsmasq lowercases, dnspython escapes the spaces)
    assert rows["203.0.113.11"]["hostname"].startswith("'=cmd|'")
    assert rows["203.0.113.13"]["hostname"] == 'a,b\\"c.example'  # quoted, read back whole
    assert rows["203.0.113.14"]["hostname"] == "\\\\033[31mred.example"  # text, no escape
    raw = out.read_text()
    assert "\x1b" not in raw and ",=cmd" not in raw
    shown = result.stdout
    assert "[bold]owned[/bold]" in shown  # markup shown, not obeyed
    assert "\x1b" not in shown and "hostname" in shown
    flat = " ".join(shown.replace("│", " ").split())
    assert "PTR via 127.0.0.1" in flat and "(6 with a name, 1 no name)" in flat


def test_rows_wait_for_a_silent_resolver_at_most_the_timeout(
    tmp_path: Path, silent_port: int
) -> None:
    servers = [V4_SERVER, "203.0.113.20", "203.0.113.21", V6_SERVER]
    capture = _capture(tmp_path / "lab.pcap", servers)
    result = runner.invoke(app, ["pcap", str(capture), "--ptr", "--resolver",
                                 f"127.0.0.1:{silent_port}", "--ptr-timeout", "0.5",
                                 "--csv", "-"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _csv_rows(result.stdout)
    assert [row["ip"] for row in rows] == servers  # in order
    assert all(row["hostname"] == row["hostname_source"] == "" for row in rows)
    note = " ".join(result.stderr.replace("│", " ").split())
    found = re.findall(r"(\d+) (timed out|late)", note)
    assert sum(int(n) for n, _ in found) == len(servers), note  # each row let go, none kept


def test_a_hostile_byte_in_a_name_stays_escaped() -> None:
    """dnsmasq will not serve control bytes; dnspython writes any it receives as \\DDD,
    and the CSV and terminal escape what is left."""
    import dns.name

    name = dns.name.Name([b"a\x1b[31m", b"\xe2\x80\xaeevil", b"example", b""])
    text = name.to_text(omit_final_dot=True)
    assert text.isprintable() and text.isascii() and "\\027" in text


AUDIT = """
import runpy, sys
seen = open(sys.argv[1], "w")
def hook(event, args):
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        seen.write(f"{event} {args[1]!r}\\n")
    elif event == "open" and "resolv.conf" in str(args[0]):
        seen.write(f"open {args[0]}\\n")
    elif event == "socket.getaddrinfo":
        seen.write(f"getaddrinfo {args[0]!r}\\n")
    seen.flush()
sys.addaudithook(hook)
sys.argv = ["stunscan", *sys.argv[2:]]
runpy.run_module("stunscan", run_name="__main__")
"""


def _audited(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = tmp_path / "audit.log"
    result = subprocess.run(
        [sys.executable, "-c", AUDIT, str(log), *args], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    return result, log.read_text().splitlines()


@needs_dnsmasq
def test_no_query_reaches_any_resolver_but_the_tests_own(tmp_path: Path, dns: DnsServer) -> None:
    capture = _capture(tmp_path / "lab.pcap", [V4_SERVER, V6_SERVER, "192.0.2.99"])
    result, seen = _audited(tmp_path, "pcap", str(capture), "--ptr", "--resolver", dns.resolver)
    assert result.returncode == 0, result.stderr
    assert seen, "the hooks saw the queries"
    assert all(f"('{dns.host}', {dns.port})" in line for line in seen), seen
    assert not any(line.startswith(("open", "getaddrinfo")) for line in seen)


def test_probe_without_resolver_never_asks_about_loopback(tmp_path: Path) -> None:
    """PTR is on by default in probe, through the system's resolver: but not for a
    special-purpose address, so nothing is asked and resolv.conf is not even read."""
    from fake_responders import binding_answer, responder

    with responder(lambda data, count: [binding_answer(data)]) as server:
        result, seen = _audited(tmp_path, "probe", server.target, "--timeout", "1", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert not any(line.startswith(("open", "getaddrinfo")) for line in seen), seen
    assert all(f"{server.port})" in line for line in seen), seen  # only the probe itself
    host = json.loads(result.stdout)
    assert host["hostname"] is None and host["naics"] == "0"


@pytest.fixture(scope="module")
def stun_server() -> Iterator[LabServer]:
    with coturn() as running:
        yield running


@needs_dnsmasq
def test_probe_fills_hostname_from_ptr_or_from_the_name_typed(
    tmp_path: Path, dns: DnsServer, stun_server: LabServer
) -> None:
    out = tmp_path / "rows.csv"
    fast = ["--timeout", "1", "--rto", "0.2", "--resolver", dns.resolver]
    result = runner.invoke(app, ["probe", f"127.0.0.1:{stun_server.port}",
                                 f"localhost:{stun_server.port}", "-4", "--csv", str(out),
                                 *fast])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = _csv_rows(out.read_text())
    assert [(r["hostname"], r["hostname_source"]) for r in rows] == [
        ("stun.lab.example", "ptr"),
        ("localhost", "user"),
    ]
    assert "stun.lab.example (ptr)" in result.stdout
    skipped = runner.invoke(app, ["probe", f"127.0.0.1:{stun_server.port}", "--json", "-",
                                  "--no-ptr", *fast])  # fmt: skip
    host = json.loads(skipped.stdout)
    assert host["hostname"] is None and host["results"][0]["response"]["hostname_source"] is None
    assert dns.queries().count("1.0.0.127.in-addr.arpa") == 1
