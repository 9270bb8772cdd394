"""``stunscan report``: report CSVs in (stunscan's own from the project's pcaps, generated
ones with statistics known by construction, gzip, zip, reordered and broken ones), figures
out (terminal, JSON, HTML, Parquet), hostile cells inert everywhere."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import gzip
import io
import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import pytest
from report_data import REPORT_2022, address, row, write, write_2022, write_file

from stunscan.record import COLUMNS

ROOT = Path(__file__).resolve().parent.parent
DAY = dt.date(2022, 5, 1)
HOSTILE_SOFTWARE = "<script>alert(1)</script>"
FORMULA = "=cmd|' /C calc'!A0"
ESCAPE = "\x1b[31mred\x1b[0m"


def stunscan(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "stunscan", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def report_json(*args: str) -> dict[str, Any]:
    done = stunscan("report", "--json", "-", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def family(result: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in result["families"] if f["family"] == name)


@pytest.fixture(scope="module")
def pcap_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """stunscan's own report of the project's captures, made here by `stunscan pcap`."""
    path = tmp_path_factory.mktemp("pcap") / "pcaps.csv"
    done = stunscan("pcap", "--csv", str(path), str(ROOT / "pcaps"))
    assert done.returncode == 0, done.stderr
    return path


def test_report_of_the_project_pcaps(pcap_csv: Path) -> None:
    with pcap_csv.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    hosts = {(r["ip"], r["port"], r["protocol"]) for r in rows}
    result = report_json(str(pcap_csv))
    assert result["rows"] == len(rows) and result["bad_rows"] == {}
    assert result["servers"] == len(hosts)
    v4 = [r for r in rows if ":" not in r["ip"]]
    assert family(result, "IPv4")["servers"] == len(
        {(r["ip"], r["port"], r["protocol"]) for r in v4}
    )
    factors = sorted(float(r["amplification"]) for r in v4)
    assert family(result, "IPv4")["mean_amplification"] == pytest.approx(
        sum(factors) / len(factors)
    )
    software = Counter(r["software"] for r in rows)
    assert {s["software"]: s["servers"] for s in result["top_software"]} == dict(software)
    ports = Counter((int(r["port"]), r["protocol"]) for r in rows)
    assert {(p["port"], p["protocol"]): p["servers"] for p in result["ports"]} == dict(ports)
    assert result["fingerprint"]["absent"] + result["fingerprint"]["present"] == len(hosts)
    # the terminal tables name the same servers
    text = stunscan("report", str(pcap_csv), columns=80).stdout
    assert "Coturn-4.6.1" in text and f"{len(v4)}" in text


def test_the_2022_figures_rebuilt_exactly(tmp_path: Path) -> None:
    path = write_2022(tmp_path / "2022.csv", DAY)
    result = report_json(str(path))
    for name, version in (("IPv4", 4), ("IPv6", 6)):
        count, mean, median = REPORT_2022[version]
        figures = family(result, name)
        assert figures["servers"] == figures["server_days"] == count
        assert figures["mean_amplification"] == pytest.approx(mean, abs=1e-9)
        assert figures["median_amplification"] == pytest.approx(median, abs=1e-9)
    text = stunscan("report", str(path), columns=80).stdout
    assert "101,146" in text and "3.98" in text and "4.40" in text
    assert "2,909" in text and "5.85" in text and "6.90" in text


def three_days() -> list[dict[str, str]]:
    """Day 1: A B C, day 2: B C D, day 3: C D E; C answers twice on day 1 (2.00 first,
    9.00 later: counted once, as 2.00)."""
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    hosts = {name: address(4, n) for n, name in enumerate("ABCDE")}
    hosts["E"] = address(6, 1)
    rows = [
        row(days[0], hosts["A"], 3.00, geo="DE", asn="64500", second=1),
        row(days[0], hosts["B"], 4.00, geo="DE", asn="64500", second=2),
        row(days[0], hosts["C"], 9.00, geo="US", asn="64501", second=30),
        row(days[0], hosts["C"], 2.00, geo="US", asn="64501", second=3),
        row(days[1], hosts["B"], 4.00, geo="DE", asn="64500"),
        row(days[1], hosts["C"], 5.00, geo="US", asn="64501"),
        row(days[1], hosts["D"], 6.00, geo="FR", asn="64502", fingerprint="0x01020304"),
        row(days[2], hosts["C"], 5.00, geo="US", asn="64501", port=3479),
        row(days[2], hosts["D"], 6.00, geo="FR", asn="64502", fingerprint="0x01020304"),
        row(days[2], hosts["E"], 7.00, geo="FR", asn="64502", software=FORMULA),
    ]
    return rows


def test_several_days(tmp_path: Path) -> None:
    rows = three_days()
    for day in sorted({r["timestamp"][:10] for r in rows}):
        write_file(tmp_path / f"{day}.csv", [r for r in rows if r["timestamp"].startswith(day)])
    result = report_json(str(tmp_path))
    assert result["days"] == 3 and len(result["files"]) == 3
    assert result["per_day"] == [
        {"day": "2022-05-01", "ipv4": 3, "ipv6": 0},
        {"day": "2022-05-02", "ipv4": 3, "ipv6": 0},
        {"day": "2022-05-03", "ipv4": 2, "ipv6": 1},
    ]
    # C on 3479 on the last day is another server than C on 3478
    assert result["churn"] == {
        "first_day": "2022-05-01",
        "last_day": "2022-05-03",
        "new": 3,
        "gone": 3,
        "still": 0,
    }
    ipv4 = family(result, "IPv4")
    assert ipv4["servers"] == 5 and ipv4["server_days"] == 8
    values = [3, 4, 2, 4, 5, 6, 5, 6]  # C's first row of day 1, not its 9.00
    assert ipv4["mean_amplification"] == pytest.approx(sum(values) / 8)
    assert ipv4["median_amplification"] == pytest.approx(4.5)
    assert ipv4["max_amplification"] == 6.0
    assert [(c["geo"], c["servers"], c["share"]) for c in result["top_countries"]] == [
        ("DE", 2, 0.3333),  # ties by name
        ("FR", 2, 0.3333),
        ("US", 2, 0.3333),  # C on 3478 and on 3479
    ]
    assert {a["asn"]: a["servers"] for a in result["top_ases"]} == {64500: 2, 64501: 2, 64502: 2}
    assert result["fingerprint"] == {"present": 1, "absent": 5}
    bins = {b["low"]: b["ipv4"] + b["ipv6"] for b in result["histogram"]["bins"]}
    assert bins == {2.0: 1, 3.0: 1, 4.0: 2, 5.0: 2, 6.0: 2, 7.0: 1}
    ipv4_points = next(p for p in result["percentiles"] if p["family"] == "IPv4")
    assert ipv4_points["p50"] == pytest.approx(4.5) and ipv4_points["max"] == 6.0


def test_a_day_split_over_files_reads_as_one_file(tmp_path: Path) -> None:
    """A day's rows spread over three files (so over more than one batch of files read
    together), a server in several of them and twice in one, its earliest row last: the
    same report as one file a day, every server counted once a day, by its earliest row."""
    rows = three_days()
    first_day = [r for r in rows if r["timestamp"].startswith("2022-05-01")]
    late_c, early_c = first_day[2], first_day[3]
    again_b = dict(first_day[1], amplification="8.00", timestamp="2022-05-01 00:00:40")
    parts = [
        [late_c, first_day[0]],
        [again_b, late_c],
        [first_day[1], early_c],
    ]
    split, whole = tmp_path / "split", tmp_path / "whole"
    split.mkdir()
    whole.mkdir()
    for number, part in enumerate(parts):
        write_file(split / f"2022-05-01-{number}.csv", part)
    write_file(whole / "2022-05-01.csv", [*first_day, again_b, late_c])
    for day in ("2022-05-02", "2022-05-03"):
        day_rows = [r for r in rows if r["timestamp"].startswith(day)]
        write_file(split / f"{day}.csv", day_rows)
        write_file(whole / f"{day}.csv", day_rows)
    from_split, from_whole = report_json(str(split)), report_json(str(whole))
    assert len(from_split.pop("files")) == 5 and len(from_whole.pop("files")) == 3
    assert from_split == from_whole
    ipv4 = family(from_split, "IPv4")
    assert ipv4["server_days"] == 8  # B and C once on day 1, whatever the files
    assert ipv4["max_amplification"] == 6.0  # neither B's 8.00 nor C's 9.00: not the first


def test_gzip_zip_and_folder_read_alike(tmp_path: Path) -> None:
    rows = three_days()
    plain = write_file(tmp_path / "plain.csv", rows)
    text = plain.read_text()
    gzipped = tmp_path / "day.csv.gz"
    with gzip.open(gzipped, "wt", newline="") as stream:
        stream.write(text)
    zipped = tmp_path / "days.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("../../outside/evil.csv", text)  # a member's path is never used
        archive.writestr("notes.txt", "not a report")
    expected = report_json(str(plain))
    for path in (gzipped, zipped):
        result = report_json(str(path))
        for key in ("families", "per_day", "churn", "top_software", "histogram"):
            assert result[key] == expected[key], (path, key)
    assert not (tmp_path.parent / "outside").exists()
    both = report_json(str(gzipped), str(zipped))
    assert both["rows"] == 2 * expected["rows"] and both["servers"] == expected["servers"]
    assert both["files"] == [str(gzipped), f"{zipped}:../../outside/evil.csv"]


def test_header_decides_columns_reordered_extra_and_missing(tmp_path: Path) -> None:
    rows = three_days()
    expected = report_json(str(write_file(tmp_path / "plain.csv", rows)))
    shuffled = [*reversed(COLUMNS), "extra_column"]
    shuffled.remove("geo")
    for item in rows:
        item["extra_column"] = "ignored,with a comma"
    result = report_json(str(write_file(tmp_path / "reordered.csv", rows, shuffled)))
    assert result["families"] == expected["families"]
    assert result["per_day"] == expected["per_day"]
    assert result["missing_columns"] == ["geo"]
    assert result["top_countries"] == [{"geo": "", "servers": 6, "share": 1.0}]
    minimal = report_json(str(write_file(tmp_path / "minimal.csv", rows, ("ip", "amplification"))))
    # no timestamp, port or protocol: UDP 3478, no days
    assert minimal["servers"] == 5 and minimal["days"] == 0
    assert minimal["ports"] == [{"port": 3478, "protocol": "udp", "servers": 5, "share": 1.0}]


def broken_file(tmp_path: Path) -> Path:
    stream = io.StringIO()
    write(
        stream,
        [
            row(
                DAY, "192.0.2.1", 4.0, software=HOSTILE_SOFTWARE, geo="<img src=x onerror=alert(1)>"
            ),
            row(DAY, "192.0.2.2", 5.0, software=FORMULA),
            row(DAY, "192.0.2.3", 6.0, software=ESCAPE),
            row(DAY, "192.0.2.4", 1.0) | {"amplification": "abc"},
            row(DAY, "192.0.2.5", 1.0) | {"timestamp": "yesterday"},
            row(DAY, "not-an-ip", 1.0),
            row(DAY, "192.0.2.6", 1.0) | {"port": "70000"},
        ],
    )
    lines = stream.getvalue().splitlines()
    lines.insert(2, lines[1] + ",one,cell,too,many")
    lines.insert(3, "2022-05-01 00:00:00,medium,192.0.2.9,udp")
    path = tmp_path / "broken.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_rows_are_counted_never_fatal(tmp_path: Path) -> None:
    path = broken_file(tmp_path)
    result = report_json(str(path))
    assert result["rows"] == 3 and result["servers"] == 3
    assert result["bad_rows"] == {
        "wrong number of columns": 2,
        "amplification not a number": 1,
        "timestamp not a date and time": 1,
        "ip not an IPv4 or IPv6 address": 1,
        "port not 1 to 65535": 1,
    }
    assert family(result, "IPv4")["mean_amplification"] == pytest.approx(5.0)
    # JSON keeps the data as it is (escaped by JSON itself); numbers are numbers
    assert {s["software"] for s in result["top_software"]} == {HOSTILE_SOFTWARE, FORMULA, ESCAPE}
    assert isinstance(result["servers"], int) and isinstance(
        result["families"][0]["mean_amplification"], float
    )
    done = stunscan("report", str(path), columns=80)
    assert done.returncode == 0
    assert "\x1b" not in done.stdout and "\\x1b[31mred" in done.stdout
    assert "6 bad rows left out" in done.stdout


class PageParser(HTMLParser):
    """Every element, attribute and text run of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_page_is_self_contained_and_inert(tmp_path: Path) -> None:
    rows = [
        *three_days(),
        row(DAY, "192.0.2.1", 4.0, software=HOSTILE_SOFTWARE, geo="<img src=x onerror=alert(1)>"),
        row(DAY, "192.0.2.2", 5.0, software=ESCAPE, geo="$\\frac{1}{0}$"),
    ]
    path = write_file(tmp_path / "hostile.csv", rows)
    page = tmp_path / "report.html"
    done = stunscan("report", "--html", str(page), str(path), str(broken_file(tmp_path)))
    assert done.returncode == 0, done.stderr
    parser = PageParser()
    parser.feed(page.read_text())
    assert parser.tags["script"] == 0 and parser.tags["link"] == 0 and parser.tags["iframe"] == 0
    assert not [a for a in parser.attributes if a[1].lower().startswith("on")]
    sources = [value for tag, name, value in parser.attributes if name in ("src", "href")]
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert parser.tags["img"] == 3  # histogram, servers per day, top countries
    for source in sources:
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    text = "".join(parser.text)
    assert HOSTILE_SOFTWARE in text and "<img src=x onerror=alert(1)>" in text
    assert FORMULA in text and "\\x1b[31mred" in text and "\x1b" not in text
    assert "Servers per day" in text and "Top countries" in text


def test_parquet_holds_the_clean_typed_rows(tmp_path: Path) -> None:
    out = tmp_path / "rows.parquet"
    done = stunscan("report", "--parquet", str(out), str(broken_file(tmp_path)))
    assert done.returncode == 0, done.stderr
    con = duckdb.connect()
    types = dict(con.execute(f"DESCRIBE SELECT * FROM '{out}'").fetchall() and [
        (r[0], r[1]) for r in con.execute(f"DESCRIBE SELECT * FROM '{out}'").fetchall()
    ])  # fmt: skip
    assert types["amplification"] == "DOUBLE" and types["port"] == "INTEGER"
    assert types["timestamp"] == "TIMESTAMP" and types["day"] == "DATE"
    assert set(COLUMNS) <= set(types)
    ips = sorted(r[0] for r in con.execute(f"SELECT ip FROM '{out}'").fetchall())
    assert ips == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    (software,) = con.execute(f"SELECT software FROM '{out}' WHERE ip = '192.0.2.1'").fetchone()
    assert software == HOSTILE_SOFTWARE


def test_compare_host_by_host(tmp_path: Path) -> None:
    old = write_file(
        tmp_path / "old.csv",
        [
            row(DAY, "192.0.2.1", 4.0),  # gone
            row(DAY, "192.0.2.2", 4.0),  # same
            row(DAY, "192.0.2.3", 4.0),  # changed amplification
            row(DAY, "192.0.2.4", 4.0, software="old"),  # changed SOFTWARE
        ],
    )
    day = DAY + dt.timedelta(days=7)
    new = write_file(
        tmp_path / "new.csv",
        [
            row(day, "192.0.2.2", 4.0),
            row(day, "192.0.2.3", 7.5),
            row(day, "192.0.2.4", 4.0, software="new"),
            row(day, "192.0.2.5", 4.0),  # new
        ],
    )
    result = report_json("--compare", str(old), str(new))
    assert result["compare"]["counts"] == {"new": 1, "gone": 1, "changed": 2, "same": 1}
    status = {h["ip"]: h["status"] for h in result["compare"]["hosts"]}
    assert status == {
        "192.0.2.1": "gone",
        "192.0.2.2": "same",
        "192.0.2.3": "changed",
        "192.0.2.4": "changed",
        "192.0.2.5": "new",
    }
    changed = next(h for h in result["compare"]["hosts"] if h["ip"] == "192.0.2.3")
    assert (changed["amplification_old"], changed["amplification_new"]) == (4.0, 7.5)
    assert result["servers"] == 4  # the figures are NEW's
    text = stunscan("report", "--compare", str(old), str(new), columns=80).stdout
    assert "1 new, 1 gone, 2 changed, 1 same" in text


def test_fits_80_columns(tmp_path: Path) -> None:
    wide = row(DAY, "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe", 3.0, software="x" * 300)
    rows = [*three_days(), wide | {"geo": "y" * 100}]
    old = write_file(tmp_path / "old.csv", rows[:3])
    path = write_file(tmp_path / "wide.csv", rows)
    done = stunscan("report", "--compare", str(old), str(path), str(path), columns=80)
    assert done.returncode == 0, done.stderr
    widths = [len(line) for line in done.stdout.splitlines()]
    assert max(widths) <= 80, max(widths)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give report CSVs"),
        (["/nonexistent/report.csv"], "no such file or folder"),
        (["--top", "0", "x.csv"], "--top must be a number from 1 to 1,000,000"),
    ],
)
def test_usage_errors_are_one_line_exit_two(args: list[str], message: str) -> None:
    done = stunscan("report", *args)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_unreadable_inputs_are_one_line(tmp_path: Path) -> None:
    not_report = tmp_path / "notes.csv"
    not_report.write_text("name,value\na,1\n")
    fake_zip = tmp_path / "fake.zip"
    fake_zip.write_bytes(b"PK\x03\x04 not really")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, message in (
        (not_report, "no 'ip' column"),
        (fake_zip, "not a readable zip"),
        (empty, "no .csv, .csv.gz or .zip files"),
    ):
        done = stunscan("report", str(path))
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
