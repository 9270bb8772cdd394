"""Report CSVs made for the tests: rows whose statistics are known by construction.

``known_amplifications`` gives n values (multiples of 0.01, as the report writes them)
whose mean and median are exactly the ones asked: the two middle values are the median,
values below it at 1.00 (and one adjusting value) pull the mean down to the target. With
the 2022 figures of the Shadowserver report this rebuilds its published distribution's
mean and median (IPv4: 101,146 servers, mean 3.98, median 4.40; IPv6: 2,909, 5.85, 6.90).
"""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from stunscan.record import COLUMNS

REPORT_2022 = {4: (101_146, 3.98, 4.40), 6: (2_909, 5.85, 6.90)}


def known_amplifications(count: int, mean: float, median: float) -> list[float]:
    """``count`` (even or odd, > 2) values in hundredths with this exact mean and median."""
    cents_median = round(median * 100)
    deficit = round(median * 100) * count - round(mean * 100) * count  # cents to take away
    assert deficit >= 0, "this construction needs mean <= median"
    low = 100  # 1.00
    step = cents_median - low
    lows, rest = divmod(deficit, step)
    values = [low] * lows
    if rest:
        values.append(cents_median - rest)
    assert len(values) < count // 2, "too few values above the median for this mean"
    values += [cents_median] * (count - len(values))
    return [v / 100 for v in values]


def address(family: int, number: int) -> str:
    base = "198.18.0.0" if family == 4 else "2001:db8::"
    return str(ipaddress.ip_address(base) + number)


def row(
    day: dt.date,
    ip: str,
    amplification: float,
    *,
    port: int = 3478,
    protocol: str = "udp",
    software: str = "Coturn-4.6.1 'Gorst'",
    geo: str = "",
    asn: str = "",
    fingerprint: str = "",
    second: int = 0,
) -> dict[str, str]:
    """One report row with the report's formats."""
    cells = dict.fromkeys(COLUMNS, "")
    cells.update(
        timestamp=f"{day.isoformat()} 00:{second // 60 % 60:02d}:{second % 60:02d}",
        severity="medium",
        ip=ip,
        protocol=protocol,
        port=str(port),
        tag="stun",
        asn=asn,
        geo=geo,
        transaction_id="0" * 24,
        magic_cookie="2112a442",
        message_length=str(max(round(amplification * 20) - 20, 0)),
        message_type="0101",
        software=software,
        fingerprint=fingerprint,
        amplification=f"{amplification:.2f}",
        response_size=str(round(amplification * 20)),
    )
    return cells


def report_2022_rows(day: dt.date) -> list[dict[str, str]]:
    """A day whose figures are the 2022 report's (servers, mean and median per family)."""
    rows = []
    for family, (count, mean, median) in REPORT_2022.items():
        for number, value in enumerate(known_amplifications(count, mean, median)):
            rows.append(row(day, address(family, number), value, second=number % 3600))
    return rows


def write_2022(path: Path, day: dt.date) -> Path:
    """The 2022 day (:func:`report_2022_rows`) written fast: 104,055 lines of one template."""
    template = row(day, "{ip}", 0.0)
    cells = [template[c] for c in COLUMNS]
    cells[COLUMNS.index("ip")] = "{ip}"
    for name in ("amplification", "response_size", "message_length"):
        cells[COLUMNS.index(name)] = "{" + name + "}"
    line = ",".join(cells) + "\n"  # no cell of the template needs quoting
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write(",".join(COLUMNS) + "\n")
        for family, (count, mean, median) in REPORT_2022.items():
            stream.writelines(
                line.format(
                    ip=address(family, number),
                    amplification=f"{value:.2f}",
                    response_size=round(value * 20),
                    message_length=max(round(value * 20) - 20, 0),
                )
                for number, value in enumerate(known_amplifications(count, mean, median))
            )
    return path


def write(
    stream: IO[str], rows: Iterable[dict[str, str]], columns: Sequence[str] = COLUMNS
) -> None:
    """Rows as a report CSV with these columns, in this order (extra ones left empty)."""
    writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")  # fmt: skip
    writer.writeheader()
    for item in rows:
        writer.writerow({c: item.get(c, "") for c in columns})


def write_file(
    path: Path, rows: Iterable[dict[str, str]], columns: Sequence[str] = COLUMNS
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as stream:
        write(stream, rows, columns)
    return path
