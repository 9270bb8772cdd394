"""The default when no MaxMind DB file is found: the data geoip2fast ships.

geoip2fast (MIT) bundles MaxMind's GeoLite2 Country and ASN data (CC BY-SA 4.0, converted
from GeoLite2-CSV_20240618) as pickled tables. ``geoip2fast-asn-ipv6.dat.gz`` is the one
file with both IPv4 and IPv6, country codes and AS names; it has no AS numbers, regions or
cities. It is loaded explicitly by path: geoip2fast's own default is IPv4 only, and its
update functions (the only ones that download) are never called. Loading takes about
0.4 s, so it happens on the first address that needs it.

geoip2fast keeps its tables in module globals: one data file per process, which is all
this needs. Importing it sets PYTHONWARNINGS and PYTHONIOENCODING in os.environ (for
processes it would start); they are put back as they were.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from stunscan.enrich.columns import Place

DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"
CREDIT = (
    "GeoLite2 data by MaxMind (CC BY-SA 4.0, https://www.maxmind.com), as bundled by geoip2fast"
)
_NO_COUNTRY = ("", "--")
"""geoip2fast's country code for private, reserved and unknown networks, and invalid input."""


class EmbeddedData:
    """Country code and AS name of an address from geoip2fast's bundled data."""

    def __init__(self) -> None:
        self._geoip: Any = None
        self._lock = threading.Lock()
        self.source = ""
        """What the data file says it is (e.g. MAXMIND:GeoLite2-CountryASN-...-20240618)."""

    def load(self) -> None:
        with self._lock:
            if self._geoip is None:
                module = _import_quietly()
                path = data_file()
                geoip = module.GeoIP2Fast(geoip2fast_data_file=str(path))
                self.source = str(getattr(geoip, "source_info", ""))
                self._geoip = geoip

    def place(self, ip: str) -> Place:
        if self._geoip is None:
            self.load()
        found = self._geoip.lookup(ip)
        code = found.country_code
        if code in _NO_COUNTRY or found.is_private:
            return Place()
        return Place(geo=code, as_org=found.asn_name or "")


def data_file() -> Path:
    """The bundled file, in geoip2fast's installed package folder."""
    import importlib.util

    spec = importlib.util.find_spec("geoip2fast")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("geoip2fast is not installed")
    return Path(spec.origin).parent / DATA_FILE


def _import_quietly() -> Any:
    saved = {key: os.environ.get(key) for key in ("PYTHONWARNINGS", "PYTHONIOENCODING")}
    try:
        from geoip2fast import geoip2fast as module
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return module
