"""Small MaxMind DB files for the enrichment tests, written with mmdb-writer in the
schemas real producers use, for documentation ranges (RFC 5737, RFC 3849) and private-use
AS numbers (RFC 5398: 64496-64511).

``GEO`` says what each file must give for an address in its ranges; the tests compare
every column against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet

V4_SERVER, V6_SERVER = "203.0.113.10", "2001:db8:1::10"
V4_OTHER = "198.51.100.7"
RANGES = {
    "203.0.113.0/24": dict(
        geo="ZZ", region="Region One", city="City, One", asn=64500, as_org="Example Net One"
    ),
    "2001:db8:1::/64": dict(
        geo="XA", region="Region Six", city="City Six", asn=64501, as_org="Example Net Six"
    ),
    "198.51.100.0/24": dict(geo="XB", region="", city="", asn=64502, as_org="=Formula Org"),
}


def _city(place: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {
        "country": {"iso_code": place["geo"], "names": {"en": f"Country {place['geo']}"}},
        "continent": {"code": "EU"},
        "location": {"latitude": 1.5, "longitude": 2.5},
    }
    if place["region"]:
        record["subdivisions"] = [{"iso_code": "R1", "names": {"de": "x", "en": place["region"]}}]
    if place["city"]:
        record["city"] = {"names": {"en": place["city"], "fr": "ville"}}
    return record


def _country(place: dict[str, Any]) -> dict[str, Any]:
    return {"country": {"iso_code": place["geo"]}, "registered_country": {"iso_code": "QQ"}}


def _asn(place: dict[str, Any]) -> dict[str, Any]:
    return {
        "autonomous_system_number": place["asn"],
        "autonomous_system_organization": place["as_org"],
    }


def _ipinfo(place: dict[str, Any]) -> dict[str, Any]:
    return {
        "country_code": place["geo"], "country": "Somewhere", "continent_code": "EU",
        "asn": f"AS{place['asn']}", "as_name": place["as_org"], "as_domain": "example.net",
    }  # fmt: skip


def _ip_location_db(place: dict[str, Any]) -> dict[str, Any]:
    return {"country_code": place["geo"], "state1": place["region"], "city": place["city"]}


SCHEMAS = {
    "city": ("GeoLite2-City", _city),
    "country": ("GeoLite2-Country", _country),
    "asn": ("GeoLite2-ASN", _asn),
    "ipinfo": ("ipinfo lite.mmdb", _ipinfo),
    "iplocation": ("ip-location-db", _ip_location_db),
}


def write(path: Path, schema: str, database_type: str | None = None, ip_version: int = 6) -> Path:
    """An IPv6 tree holding IPv4 too (as MaxMind's files are), or an IPv4-only one, in
    ``schema``'s record form."""
    default_type, make = SCHEMAS[schema]
    writer = MMDBWriter(
        ip_version=ip_version, ipv4_compatible=ip_version == 6,
        database_type=database_type or default_type, languages=["en"],
        description="stunscan test data",
    )  # fmt: skip
    for network, place in RANGES.items():
        if ip_version == 4 and ":" in network:
            continue
        writer.insert_network(IPSet([network]), make(place))
    writer.to_db_file(str(path))
    return path
