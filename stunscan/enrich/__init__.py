"""The report's columns a STUN answer does not carry: hostname, asn, geo, region, city,
naics, hostname_source, sector.

Offline and shared by ``scan``, ``pcap`` and ``probe``: MaxMind DB files (GeoLite2 /
GeoIP2, DB-IP Lite, IPinfo Lite, ip-location-db) found or named with ``--geoip``, else the
GeoLite2 country and AS-name data that geoip2fast ships (``places.py``); reverse DNS through
a resolver the user chose or the system's (``ptr.py``, the only part that sends anything);
NAICS code and sector by AS number from a CSV (``sectors.py``). :class:`Enricher`
(``enricher.py``) puts them together, cached per address; :class:`RowStream` (``stream.py``)
lets rows wait for their PTR answer, each at most the timeout, and keeps their order.

This module imports nothing heavy: the record writers take :class:`Enrichment` from
``columns.py`` without loading any database.
"""

from stunscan.enrich.columns import Enrichment, Place

__all__ = ["Enrichment", "Place"]
