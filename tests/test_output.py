"""Output that tells the truth, the same way in every command (issue 15): one JSON shape
per thing, validated against the packaged schemas; rows that name the server; responder
roles; tables that fit their width; help in words and one-line usage errors."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab_servers import LabServer, stund
from rich.console import Console
from test_codec_differential import assert_agree_on_datagram
from typer.testing import CliRunner

from stunscan import codec
from stunscan import protocol as proto
from stunscan.cli import app, main
from stunscan.jsonshape import codec_attribute_json, validator
from stunscan.probe import Probe, Target, Timing, probe_target
from stunscan.probe.output import host_json
from stunscan.render.messages import attribute_text
from stunscan.render.records import records_table
from stunscan.scan.display import ScanProgress
from stunscan.text import endpoint_text

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
PCAPS = ROOT / "pcaps"
CORPUS = ROOT.parent / "shared" / "corpus" / "pcaps"
FAST = Timing(rto=0.1, transmissions=3, timeout=0.6)


def pcap_json(*args: str) -> list[dict[str, Any]]:
    result = runner.invoke(app, ["pcap", "--json", "-", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def pcap_csv(*args: str) -> list[dict[str, str]]:
    result = runner.invoke(app, ["pcap", "--csv", "-", *args])
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


# --------------------------------------------------------------------------- JSON shapes


def test_pcap_json_validates_and_numbers_are_numbers() -> None:
    rows = pcap_json("--include-peers", str(PCAPS), str(CORPUS))
    check = validator("pcap")
    for row in rows:
        check.validate(row)
        assert isinstance(row["port"], int) and isinstance(row["amplification"], float)
        assert row["server"] == {"ip": row["ip"], "port": row["port"]}
        assert isinstance(row["client"], dict) and isinstance(row["client"]["port"], int)
        for attr in row["attributes"]:
            assert "hex" in attr
    ipv6 = next(r for r in rows if r["ip"] == "::1")
    mapped = next(a for a in ipv6["attributes"] if a["name"] == "XOR-MAPPED-ADDRESS")
    assert mapped["value"] == {"family": 2, "ip": "::1", "port": ipv6["client"]["port"]}


def test_every_message_of_the_corpus_validates_with_all_messages() -> None:
    check = validator("pcap")
    rows = pcap_json("--all-messages", str(PCAPS), str(CORPUS))
    assert {r["direction"] for r in rows} == {"request", "response", "indication"}
    for row in rows:
        check.validate(row)


def test_binary_username_is_recoverable_from_its_hex() -> None:
    """Arkime's MS-TURN Allocate carries a USERNAME that is not UTF-8: the decoded value
    has replacement characters, the hex beside it has the bytes."""
    rows = pcap_json("--all-messages", str(CORPUS / "arkime" / "stun.pcap"))
    usernames = [
        a
        for r in rows
        for a in r["attributes"]
        if a["name"] == "USERNAME" and "\ufffd" in a["value"]
    ]
    assert usernames
    for attr in usernames:
        raw = bytes.fromhex(attr["hex"])
        assert len(raw) == attr["length"]
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
        assert raw.decode("utf-8", "replace") == attr["value"]


def test_attribute_json_keeps_raw_hex_of_a_malformed_value() -> None:
    attr = codec.decode_attribute(proto.XOR_MAPPED_ADDRESS, 3, b"\x00\x01\x02", b"\x00", b"")
    shaped = codec_attribute_json(attr)
    assert shaped["hex"] == "000102" and shaped["problem"] and shaped["padding_hex"] == "00"
    validator("common")  # the shared file is itself a valid schema document


def test_decode_json_attributes_follow_the_shared_shape() -> None:
    check = validator("decode")
    vector = "0101002c2112a442b7e7a701bc34d686fa87dfae802200045354554e0020000800019a89e1c7b0b8"
    result = runner.invoke(app, ["decode", "--json", "-", vector + "00000000"])
    for line in result.stdout.splitlines():
        check.validate(json.loads(line))


# --------------------------------------------------------------------------- rows


def test_request_rows_name_the_server_and_carry_no_amplification() -> None:
    rows = pcap_json("--all-messages", str(PCAPS / "coturn-udp.pcap"))
    requests = [r for r in rows if r["direction"] == "request"]
    responses = [r for r in rows if r["direction"] == "response"]
    assert requests and responses
    for row in requests:
        assert (row["ip"], row["port"]) == ("127.0.0.1", 3478)
        assert row["amplification"] is None and row["response_size"] is None
        assert row["severity"] is None and row["tag"] is None and row["role"] is None
        assert row["client"]["port"] != 3478
    for row in responses:
        assert (row["ip"], row["port"]) == ("127.0.0.1", 3478)
        assert row["severity"] == "medium" and row["amplification"] > 1
    cells = pcap_csv("--all-messages", str(PCAPS / "coturn-udp.pcap"))
    request_cells = [c for c in cells if c["message_type"] == "0001"]
    assert request_cells and all(
        c["port"] == "3478" and c["amplification"] == "" for c in request_cells
    )


# --------------------------------------------------------------------------- roles, filters


def test_ice_peers_and_turn_are_not_counted_as_servers() -> None:
    rows = pcap_json("--include-peers", str(CORPUS))
    roles = {(r["ip"], r["port"]): r["role"] for r in rows}
    assert roles[("10.206.50.239", 42000)] == "ice-peer"
    assert roles[("10.77.110.51", 41588)] == "ice-peer"
    assert roles[("31.13.86.54", 40003)] == "turn"
    assert roles[("74.125.247.128", 3478)] == "server"
    default = {(r["ip"], int(r["port"])) for r in pcap_csv(str(CORPUS))}
    assert ("10.206.50.239", 42000) not in default and ("74.125.247.128", 3478) in default
    assert ("31.13.86.54", 40003) not in default
    table = runner.invoke(app, ["pcap", str(CORPUS)], env={"COLUMNS": "160"})
    assert re.search(r"not reported\s+ice-peer \d+.*turn \d+", table.stdout)


def test_public_only_port_server_filters() -> None:
    public = {r["ip"] for r in pcap_json("--public-only", str(PCAPS), str(CORPUS))}
    assert public and not any(
        ip.startswith(("10.", "127.", "172.16.", "192.168.")) or ip == "::1" for ip in public
    )
    on_port = pcap_json("--port", "3479", str(PCAPS))
    assert on_port and {r["port"] for r in on_port} == {3479}
    inside = pcap_json("--server", "127.0.0.2/32", str(PCAPS))
    assert [r["ip"] for r in inside] == ["127.0.0.2"]
    bad = runner.invoke(app, ["pcap", "--server", "nonsense", str(PCAPS)])
    assert bad.exit_code == 2 and "not an address or CIDR" in bad.stderr


def test_sort_amplification_puts_the_largest_first() -> None:
    result = runner.invoke(
        app, ["pcap", "--sort", "amplification", "--table-rows", "3", str(PCAPS)],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    factors = [float(m) for m in re.findall(r"│\s+(\d+\.\d\d)\*? │", result.stdout)]
    assert factors == sorted(factors, reverse=True) and factors[0] == 7.00


# --------------------------------------------------------------------------- unknown methods

WHATSAPP_LIKE = bytes.fromhex(
    "0801" "0010" "2112a442" "0102030405060708090a0b0c"
    "0001" "0004" "deadbeef"  # MAPPED-ADDRESS's code, 4 bytes: wrong for STUN, fine here
    "4000" "0003" "616263" "00"  # a vendor attribute, padded
)  # fmt: skip


def test_unknown_method_is_checked_for_structure_only() -> None:
    message = codec.decode(WHATSAPP_LIKE)
    assert message is not None and message.malformed == []
    assert message.type_name == "unknown method (message type 0x0801)"
    assert [a.name for a in message.attributes] == ["0x0001", "0x4000"]
    assert codec.peek(WHATSAPP_LIKE)[4] is True  # type: ignore[index]
    assert_agree_on_datagram(WHATSAPP_LIKE)
    cut = WHATSAPP_LIKE[:-1]
    broken = codec.decode(cut)
    assert broken is not None and broken.malformed
    assert_agree_on_datagram(cut)


# --------------------------------------------------------------------------- probe


@pytest.fixture(scope="module")
def stund_server() -> Iterator[LabServer]:
    with stund() as server:
        yield server


def test_lifetime_is_shown_in_seconds() -> None:
    attr = codec.decode_attribute(
        proto.parse_attribute_code("LIFETIME"), 4, (600).to_bytes(4, "big"), b"", b""
    )
    assert attribute_text(attr) == "600 s"


def test_nat_answers_count_toward_verdict_and_worst(stund_server: LabServer) -> None:
    target = Target("stund", stund_server.host, stund_server.port)
    report = probe_target(target, Probe(("nat", "allocate"), timing=FAST))
    assert report.nat is not None and report.nat.tests[0][1].answered
    verdict = report.verdict()
    assert "nothing asked" not in verdict and "no STUN answer over UDP" not in verdict
    assert verdict.startswith("AMPLIFIER over UDP")
    shaped = host_json(report)
    assert shaped["answered"] and shaped["worst"] is not None
    assert shaped["worst"]["variant"].startswith("nat ")
    validator("probe").validate(shaped)
    assert isinstance(shaped["nat"]["mapped"], dict) and isinstance(
        shaped["nat"]["mapped"]["port"], int
    )


def test_all_variants_run_side_by_side(stund_server: LabServer) -> None:
    """No timed test: the variants' transactions overlap in time, so a host costs about
    one timeout, not one per unanswered variant."""
    target = Target("stund", stund_server.host, stund_server.port)
    from stunscan.probe import NAMES

    report = probe_target(target, Probe(tuple(NAMES), tcp=True, timing=FAST))
    exchanges = [r.exchange for r in report.results]  # NAT tests run in turn, by design
    waited = [e for e in exchanges if e.failure == "no answer"]
    assert waited  # stund ignores Allocate: that one waits out the whole timeout
    latest_start = max(e.started for e in exchanges)
    earliest_end = min(e.finished for e in waited)
    assert latest_start < earliest_end  # every transaction began before the wait was over
    validator("probe").validate(host_json(report))


def test_probe_json_from_the_command_validates(stund_server: LabServer) -> None:
    result = runner.invoke(
        app,
        ["probe", "-V", "binding", "-V", "nat", "--json", "-", "--timeout", "0.6", "--rto", "0.1",
         f"{stund_server.host}:{stund_server.port}", "no-such-host.invalid:1"],
    )  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    for line in lines:
        validator("probe").validate(line)


# --------------------------------------------------------------------------- tables


def _records() -> list[Any]:
    from stunscan.pcap.analyzer import Analyzer
    from stunscan.pcap.feed import PcapFeed

    analyzer = Analyzer()
    records = []
    for path in [*sorted(PCAPS.glob("*.pcap*")), *sorted(CORPUS.rglob("*.pcap"))]:
        for sightings in PcapFeed(path, analyzer):
            records += [s.record() for s in sightings]
    return records


@pytest.mark.parametrize("own_address", [False, True], ids=["pcap", "scan"])
@pytest.mark.parametrize("width", [80, 120, 200])
def test_tables_fit_their_width(width: int, own_address: bool) -> None:
    records = _records()
    console = Console(width=width, record=True, color_system=None)
    table = records_table(records, "responding servers", width, own_address=own_address)
    console.print(table)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    header = next(line for line in lines if "server" in line and "response" in line)
    for column in table.columns:
        assert f" {column.header} " in header, (column.header, header)  # whole, one line
    assert any(r.ip.count(":") > 1 for r in records)  # IPv6 servers are in the table
    if width >= 120:
        for record in records:
            server = f"{endpoint_text(record.ip, record.port)}/{record.protocol}"
            assert any(server in line for line in lines), server
            if any(str(c.header).startswith("MAPPED") for c in table.columns):
                for address in filter(None, record.addresses()):
                    assert any(str(address) in line for line in lines), address
    names = {str(c.header) for c in table.columns}
    if width == 80:
        assert table.caption and "left out" in str(table.caption)
    if width == 200 and not own_address:
        assert {"MAPPED", "XOR-MAPPED", "SOFTWARE", "FINGERPRINT"} <= names


def test_scan_table_flags_mapped_addresses_that_differ() -> None:
    records = _records()[:3]
    for record in records:
        record.client = str(record.addresses()[1])
    records[1].client = "192.0.2.9:4000"
    console = Console(width=160, record=True, color_system=None)
    console.print(records_table(records, "servers", 160, own_address=True))
    text = console.export_text()
    assert "XOR-MAPPED-ADDRESS" not in text and text.count("as sent") == 2
    assert "XOR-MAPPED " in text


# --------------------------------------------------------------------------- scan progress


def test_progress_shows_phase_and_sending_rate() -> None:
    senders = [1000, 1000]
    counters = [0] * 16
    progress = ScanProgress(senders, counters, 1000)
    progress.started -= 2.0
    assert "sending" in progress.line() and "ETA" in progress.line()
    progress.sending_ended(rate=500.0)
    progress.cooling(3.0)
    line = progress.line()
    assert "cooling down" in line and "500 pkt/s" in line and "ETA" not in line
    progress.stopping()
    assert "stopping" in progress.line()


# --------------------------------------------------------------------------- command line


def test_help_shows_words_not_python_types() -> None:
    for command in ("pcap", "probe", "scan", "decode", "explain"):
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "120"}).stdout
        assert not re.search(r"<(bool|str|int|float|list\[.*?\]|path)>", text), (command, text)
        assert "{" not in text.split("\n", 2)[0] + text.split("\n", 2)[1]
    assert "CAPTURE..." in runner.invoke(app, ["pcap", "--help"]).stdout
    assert "HOST[:PORT]..." in runner.invoke(app, ["probe", "--help"]).stdout


@pytest.mark.parametrize(
    "args", [["pcap", "--bogus"], ["probe"], ["pcap", str(PCAPS), "--table-rows", "x"]]
)
def test_usage_errors_are_one_line(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(args)
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("stunscan: "), err
    assert "╭" not in err


def test_pcaps_readme_names_the_bytes_stund_sends() -> None:
    rows = pcap_json(str(PCAPS / "stund-classic.pcap"))
    codes = {a["type"] for r in rows for a in r["attributes"]}
    assert "0020" in codes and "8020" not in codes
    readme = (PCAPS / "README.md").read_text()
    assert "0x8020 XOR-MAPPED" not in readme and "0x0020" in readme


def test_scan_rows_of_an_unknown_method_agree_on_both_paths() -> None:
    """A server answering our Binding with a vendor's method: the batch row and the
    one-at-a-time row (and the record) give its attributes no STUN meaning alike."""
    from test_scan_triage import SERVERS4, Scan, in_batches, udp_frame

    from stunscan.scan.answer import Row

    scan = Scan("binding")
    vendor = proto.message_type(0x201, proto.MessageClass.SUCCESS_RESPONSE)
    frames = [udp_frame(a, scan.answer(a, msg_type=vendor)) for a in SERVERS4[:4]]
    _, answers = in_batches(scan, frames, 4096)
    assert len(answers) == 4
    for answer in answers:
        made = answer.line()
        again = dataclasses.replace(answer, row=None).line()
        assert isinstance(made, Row) and made == again
        row = answer.record().row()
        assert row["xor_mapped_address"] == "" and row["software"] == ""
        assert made.line.rstrip("\n") == ",".join(row.values())
