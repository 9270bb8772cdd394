"""Every numeric option of probe, scan and pcap: finite, in its documented range, or one
line and exit 2 (never "no limit" for a NaN, never an OverflowError traceback). Ports are
ASCII digits 1..65535; '::1:3478' is refused as ambiguous. ``scan`` runs with --dry-run
(nothing is ever sent: the values are refused before any target is even planned)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stunscan import options as opt
from stunscan.cli import app

runner = CliRunner()
SCAN = ["scan", "--dry-run", "192.0.2.0/30", "--allow", "192.0.2.0/30", "--seed", "1"]
PROBE = ["probe", "127.0.0.1:9"]
FULL_WIDTH = "\uff13\uff14\uff17\uff18"
"""3478 in full-width digits, which str.isdigit and int() accept."""


def refused(args: list[str], *words: str) -> str:
    result = runner.invoke(app, args)
    output = result.output
    assert result.exit_code == 2, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("stunscan: "), output
    for word in words:
        assert word in lines[0], output
    return lines[0]


@pytest.mark.parametrize(
    "option, value",
    [
        ("--rate", "nan"),
        ("--rate", "inf"),
        ("--rate", "-1"),
        ("--rate", "1e-300"),
        ("--rate", "1e300"),
        ("--cooldown", "nan"),
        ("--cooldown", "inf"),
        ("--cooldown", "-1"),
        ("--cooldown", "1e300"),
        ("--probes", "0"),
        ("--probes", "256"),
        ("--senders", "0"),
        ("--senders", "65"),
        ("--shards", "0"),
        ("--shards", str(1 << 40)),
        ("--max-targets", "-1"),
        ("--table-rows", "-1"),
        ("--table-rows", "10000000"),
    ],
)
def test_scan_numbers_out_of_range_are_one_line(option: str, value: str) -> None:
    refused([*SCAN, option, value], option)


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5M", "1e-300", "1e300", "10X", "", "M"])
def test_scan_bandwidth_must_be_a_real_rate(value: str) -> None:
    refused([*SCAN, "--bandwidth", value], "bandwidth")


@pytest.mark.parametrize("shard", ["-1", "3"])
def test_scan_shard_outside_the_shards(shard: str) -> None:
    refused([*SCAN, "--shards", "3", "--shard", shard], "--shard")


def test_scan_good_numbers_still_run() -> None:
    args = [*SCAN, "--rate", "0", "--cooldown", "0", "--bandwidth", "10M", "--max-targets", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2
    assert runner.invoke(app, [*SCAN, "--max-targets", str(10**40)]).exit_code == 0


@pytest.mark.parametrize(
    "option, value",
    [
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--timeout", "-1"),
        ("--rto", "nan"),
        ("--rto", "0"),
        ("--rto", "inf"),
        ("--rto", "1e-300"),
        ("--transmissions", "0"),
        ("--transmissions", "100000"),
        ("--parallel", "0"),
        ("--parallel", "100000"),
    ],
)
def test_probe_numbers_out_of_range_are_one_line(option: str, value: str) -> None:
    refused([*PROBE, option, value], option)


@pytest.mark.parametrize("option, value", [("--table-rows", "-1"), ("--workers", "-1"),
                                           ("--workers", "1000")])  # fmt: skip
def test_pcap_numbers_out_of_range_are_one_line(option: str, value: str) -> None:
    refused(["pcap", "pcaps/", option, value], option)


BAD_PORTS = ["\u00b3", FULL_WIDTH, "+3478", "0", "65536", "9" * 5000]


@pytest.mark.parametrize("port", [*("host:" + p for p in BAD_PORTS), "[::1]:" + FULL_WIDTH])
def test_probe_ports_are_ascii_digits(port: str) -> None:
    refused(["probe", port], "port")


def test_probe_bare_ipv6_with_a_port_is_ambiguous() -> None:
    line = refused(["probe", "::1:3478"], "ambiguous", "[::1]:3478")
    assert "[::1:3478]" in line


def test_bare_ipv6_addresses_still_work() -> None:
    from stunscan.probe.targets import split_host_port

    assert split_host_port("::1") == ("::1", 3478)
    assert split_host_port("2001:db8::7") == ("2001:db8::7", 3478)
    assert split_host_port("2001:db8:0:0:0:0:1:3478") == ("2001:db8:0:0:0:0:1:3478", 3478)
    assert split_host_port("[::1:3478]") == ("::1:3478", 3478)
    assert split_host_port("[::1]:3479") == ("::1", 3479)


@pytest.mark.parametrize("ports", [*BAD_PORTS, "3_478", "3478-" + FULL_WIDTH])
def test_scan_ports_are_ascii_digits(ports: str) -> None:
    refused([*SCAN, "-p", ports], "port")


def test_ranges_are_described_in_the_message() -> None:
    with pytest.raises(opt.OptionError, match=r"--rate must be a number from 1 to 100,000,000,"
                       r" or 0 \(as fast as possible\), not nan"):  # fmt: skip
        opt.check("rate", float("nan"), opt.RATE)
    opt.check("rate", 0.0, opt.RATE)
    opt.check("max-targets", 10**50, opt.MAX_TARGETS)
