"""Enrichment lookups: what one address costs, first time and cached, against the library
a user would call directly.

Run: ``python benchmarks/enrich_lookups.py [--addresses N] [--runs R]``. No network: the
MaxMind DB files are written here (mmdb-writer: a City and an ASN record for
each /24 of 198.18.0.0/16, RFC 2544's range), the embedded data is geoip2fast's bundled file.

Per source, addresses per second over N distinct addresses (median of R runs):

- stunscan's ``Enricher.enrichment`` on new addresses (a City and an ASN file; the
  embedded default on public addresses), then on the same addresses again (cached);
- ``maxminddb.Reader.get`` on both files (what stunscan calls underneath), and
  geoip2fast's own ``lookup``, each address once.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))


def rate(work: Callable[[str], object], addresses: list[str]) -> float:
    started = time.perf_counter()
    for address in addresses:
        work(address)
    return len(addresses) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import maxminddb
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    from stunscan.enrich.embedded import EmbeddedData, data_file
    from stunscan.enrich.enricher import Enricher
    from stunscan.enrich.places import Places

    generator = random.Random(7)
    lab = [str(ipaddress.ip_address(0xC6120000 + generator.randrange(1 << 16)))
           for _ in range(args.addresses)]  # fmt: skip
    public = []
    while len(public) < args.addresses:
        candidate = ipaddress.ip_address(generator.randrange(1 << 32))
        if candidate.is_global:
            public.append(str(candidate))
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        city, asn = Path(folder) / "city.mmdb", Path(folder) / "asn.mmdb"
        for path, kind in ((city, "GeoLite2-City"), (asn, "GeoLite2-ASN")):
            writer = MMDBWriter(6, database_type=kind, ipv4_compatible=True, languages=["en"],
                                description="bench")  # fmt: skip
            for block in range(256):
                network = f"198.18.{block}.0/24"
                record = (
                    {"country": {"iso_code": "ZZ"}, "city": {"names": {"en": f"City {block}"}}}
                    if kind.endswith("City")
                    else {"autonomous_system_number": 64496 + block % 16,
                          "autonomous_system_organization": f"Org {block}"}
                )  # fmt: skip
                writer.insert_network(IPSet([network]), record)
            writer.to_db_file(str(path))
        for _ in range(args.runs):
            files = Enricher(Places.find([city, asn]))
            results.setdefault("stunscan, MMDB files, new", []).append(rate(files.enrichment, lab))
            results.setdefault("stunscan, MMDB files, cached", []).append(
                rate(files.enrichment, lab))  # fmt: skip
            readers = [maxminddb.open_database(str(city)), maxminddb.open_database(str(asn))]
            results.setdefault("maxminddb.get, both files", []).append(
                rate(lambda a, readers=readers: [r.get(a) for r in readers], lab))  # fmt: skip
            embedded = Enricher(Places([], EmbeddedData()))
            embedded.places.preload()  # type: ignore[union-attr]
            results.setdefault("stunscan, embedded, new", []).append(
                rate(embedded.enrichment, public)
            )
            results.setdefault("stunscan, embedded, cached", []).append(
                rate(embedded.enrichment, public))  # fmt: skip
            from geoip2fast import GeoIP2Fast

            direct = GeoIP2Fast(geoip2fast_data_file=str(data_file()))
            results.setdefault("geoip2fast.lookup", []).append(rate(direct.lookup, public))
    print(f"{args.addresses:,} distinct addresses, median of {args.runs} runs (addresses/s)")
    for name, figures in results.items():
        print(f"  {name:<32}{statistics.median(figures):>14,.0f}")
    ours = statistics.median(results["stunscan, embedded, new"])
    theirs = statistics.median(results["geoip2fast.lookup"])
    print(f"stunscan embedded (new) / geoip2fast.lookup: {ours / theirs:.2f}x")
    ours = statistics.median(results["stunscan, MMDB files, new"])
    theirs = statistics.median(results["maxminddb.get, both files"])
    print(f"stunscan MMDB (new) / maxminddb.get: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
