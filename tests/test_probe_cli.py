"""``stunscan probe`` as a user runs it: targets, output formats, exit status, escaping of
what a hostile server sends, a name that does not resolve (inside a network namespace the
test makes, where no DNS query can leave the machine), and no Scapy import."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from fake_responders import HOSTILE_SOFTWARE, hostile, responder, silent
from lab_servers import LabServer, coturn
from typer.testing import CliRunner

from stunscan import protocol as proto
from stunscan.cli import app
from stunscan.layers import STUN, STUNClassic
from stunscan.probe.targets import TargetError, Unresolved, resolve, split_host_port
from stunscan.probe.variants import VARIANTS
from stunscan.record import COLUMNS

runner = CliRunner()
FAST = ["--timeout", "0.6", "--rto", "0.2"]


@pytest.fixture(scope="module")
def server() -> Iterator[LabServer]:
    with coturn(auth=True) as running:
        yield running


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", 3478)),
        ("192.0.2.1:3479", ("192.0.2.1", 3479)),
        ("stun.example.org", ("stun.example.org", 3478)),
        ("stun.example.org:19302", ("stun.example.org", 19302)),
        ("2001:db8::1", ("2001:db8::1", 3478)),
        ("[2001:db8::1]", ("2001:db8::1", 3478)),
        ("[2001:db8::1]:5349", ("2001:db8::1", 5349)),
    ],
)
def test_target_forms(text: str, expected: tuple[str, int]) -> None:
    assert split_host_port(text) == expected


@pytest.mark.parametrize(
    "text", ["", ":3478", "host:0", "host:70000", "host:x", "[2001:db8::1", "[nope]:1", "1:2:3:z"]
)
def test_bad_targets_are_refused(text: str) -> None:
    with pytest.raises(TargetError):
        split_host_port(text)


def test_localhost_resolves_from_hosts_file_and_family_limits() -> None:
    found = resolve("localhost:4000")
    assert isinstance(found, list)
    assert all(t.port == 4000 for t in found) and "127.0.0.1" in {t.address for t in found}
    assert isinstance(resolve("::1", family=socket.AF_INET6), list)
    refused = resolve("127.0.0.1", family=socket.AF_INET6)  # an IPv4 literal has no place
    assert isinstance(refused, Unresolved) and "IPv4" in refused.reason


def test_variants_are_the_bytes_the_scapy_layer_builds() -> None:
    """One protocol truth: the probe's Scapy-free builder against the layer, field by field."""
    for name, variant in VARIANTS.items():
        request = variant.build()
        parsed = STUN(request)
        if name == "classic":
            assert isinstance(parsed, STUNClassic)
            rebuilt = STUNClassic(type="Binding Request", transaction_id=request[4:20])
        else:
            attributes = [a.copy() for a in parsed.attributes]
            for attribute in attributes:
                attribute.length = None  # recomputed, as a user building it would
                if attribute.attribute_name == "FINGERPRINT":
                    attribute.crc = None
            rebuilt = STUN(type=parsed.type, transaction_id=request[8:20], attributes=attributes)
        assert bytes(rebuilt) == request, name
        assert parsed.malformed_reasons() == [], name
    assert VARIANTS["shadowserver"].build() == proto.REFERENCE_PROBE
    assert STUN(VARIANTS["fingerprint"].build()).fingerprint_ok() is True
    change = STUN(VARIANTS["change-request"].build()).get_attribute("CHANGE-REQUEST")
    assert (change.change_ip, change.change_port) == (1, 1)
    allocate = STUN(VARIANTS["allocate"].build())
    assert allocate.type_name == "Allocate Request"
    assert allocate.get_attribute("REQUESTED-TRANSPORT").decoded == 17


def test_probe_prints_a_panel_and_exits_zero(server: LabServer) -> None:
    result = runner.invoke(
        app, ["probe", "-V", "binding", "-V", "allocate", f"127.0.0.1:{server.port}", *FAST]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        "XOR-MAPPED-ADDRESS",
        "MAPPED vs XOR-MAPPED",
        "agree",
        "RESPONSE-ORIGIN",
        "OTHER-ADDRESS",
        "Coturn-",
        "401 Unauthorized",
        "example.org",
        "AMPLIFIER over UDP",
        "TURN server",
    ):
        assert expected in out, expected


def test_probe_json_and_csv(server: LabServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    csv_path = tmp_path / "rows.csv"
    result = runner.invoke(
        app,
        [
            "probe",
            "-V",
            "shadowserver",
            "-V",
            "binding",
            "--tcp",
            f"127.0.0.1:{server.port}",
            f"[::1]:{server.port}",
            "--json",
            "-",
            "--csv",
            str(csv_path),
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output
    hosts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [h["ip"] for h in hosts] == ["127.0.0.1", "::1"]  # in the order given
    for host in hosts:
        assert host["answered"] and host["worst"]["variant"] in ("shadowserver", "binding")
        transports = {(r["variant"], r["transport"]) for r in host["results"]}
        assert ("binding", "tcp") in transports
        answer = host["results"][0]["response"]
        assert answer["magic_cookie"] == "2112a442" and answer["message_type"] == "0101"
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text())))
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["ip"], r["port"], r["transaction_id"]) for r in rows] == [
        ("127.0.0.1", str(server.port), "0" * 24),
        ("::1", str(server.port), "0" * 24),
    ]
    assert rows[1]["xor_mapped_family"] == "02" and rows[0]["amplification"] == "4.60"


def test_no_answer_exits_one_with_the_reason() -> None:
    with responder(silent) as quiet:
        result = runner.invoke(app, ["probe", quiet.target, *FAST])
    assert result.exit_code == 1
    assert "no answer" in result.stdout and "no STUN answer over UDP" in result.stdout


def test_hostile_software_is_shown_escaped() -> None:
    with responder(hostile) as evil:
        result = runner.invoke(app, ["probe", evil.target, *FAST], color=True)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "\x07" not in out and "\u202e" not in out
    assert "\x1b[31m" not in out  # the server's own escape never reaches the terminal
    assert "\\x1b[31m" in out and "\\x07" in out and "\\u202e" in out
    assert "[bold red]PWNED[/bold red]" in out  # markup shown as text, not obeyed
    assert HOSTILE_SOFTWARE not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", "[::1"], "expected [IPv6]"),
        (["probe", "127.0.0.1:99999"], "port must be"),
        (["probe", "-V", "nonsense", "127.0.0.1"], "unknown variant"),
        (["probe", "--no-udp", "127.0.0.1"], "nothing to ask"),
        (["probe", "-4", "-6", "127.0.0.1"], "no address"),
    ],
)
def test_probe_usage_errors_are_one_line_exit_two(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_probe_does_not_import_scapy() -> None:
    code = (
        "import sys; from stunscan.cli import app; from stunscan.probe.run import run_probes;"
        " assert 'scapy' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"), reason="needs root and ip")
def test_a_name_that_does_not_resolve_in_an_isolated_namespace() -> None:
    """Inside a fresh namespace with no route, the resolver's query cannot leave."""
    namespace = f"stunscan-probe-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-m", "stunscan", "probe",
             "no-such-host.invalid", "--json", "-", *FAST],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        subprocess.run(["ip", "netns", "delete", namespace], check=True)
    assert result.returncode == 1, result.stderr
    assert "no-such-host.invalid: name does not resolve" in result.stderr
    assert json.loads(result.stdout)["error"].startswith("name does not resolve")
