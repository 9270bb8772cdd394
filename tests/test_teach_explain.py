"""explain for learners and MESSAGE-INTEGRITY from the command line (issue 15/16): the type's
bit diagram, FINGERPRINT and MESSAGE-INTEGRITY worked with real numbers, --password /
--username --realm / --key on RFC 5769 and RFC 8489 B.1, the amplification budget."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stunscan import protocol as proto
from stunscan.cli import app

from corpus import PROJECT, needs_corpus, rfc_vectors

runner = CliRunner()
WIDE = {"COLUMNS": "220"}


def _vector(name: str) -> dict[str, Any]:
    (found,) = [v for v in rfc_vectors() if v["name"].startswith(name)]
    return found


def _file(tmp_path: Path, vector: dict[str, Any]) -> str:
    path = tmp_path / f"{vector['name']}.bin"
    path.write_bytes(bytes.fromhex(vector["hex"]))
    return str(path)


def _right(vector: dict[str, Any]) -> list[str]:
    creds = vector["credentials"]
    if creds["mechanism"] == "short-term":
        return ["--password", creds["password"]]
    # the password before SASLprep: stunscan must prep it itself
    password = creds.get("password_before_saslprep") or creds.get("password_before_opaquestring")
    return ["--username", creds["username"], "--realm", creds["realm"], "--password", password]


def _wrong(vector: dict[str, Any]) -> list[str]:
    args = _right(vector)
    args[-1] = args[-1] + "x"
    return args


INTEGRITY_VECTORS = [
    "rfc5769_2.1",
    "rfc5769_2.2",
    "rfc5769_2.3",
    "rfc5769_2.4",
    "rfc8489_B.1_erratum6268",
]


@needs_corpus
@pytest.mark.parametrize("name", INTEGRITY_VECTORS)
def test_decode_checks_integrity_with_the_right_key_only(name: str, tmp_path: Path) -> None:
    vector = _vector(name)
    source = _file(tmp_path, vector)
    attribute = "MESSAGE-INTEGRITY-SHA256" if name.startswith("rfc8489") else "MESSAGE-INTEGRITY"
    for args, expected in ((_right(vector), True), (_wrong(vector), False)):
        result = runner.invoke(app, ["decode", "--json", "-", source, *args])
        assert result.exit_code == 0, result.output
        (line,) = result.stdout.splitlines()
        assert json.loads(line)["integrity"] == {attribute: expected}
    key = vector["credentials"]["hmac_key_hex"]
    result = runner.invoke(app, ["decode", "--json", "-", source, "--key", key])
    assert json.loads(result.stdout)["integrity"] == {attribute: True}
    shown = runner.invoke(app, ["decode", source, *_wrong(vector)], env=WIDE).stdout
    assert f"{attribute.lower()}" in shown and "INVALID" in shown


@needs_corpus
@pytest.mark.parametrize("name", INTEGRITY_VECTORS)
def test_explain_walks_integrity_with_the_real_numbers(name: str, tmp_path: Path) -> None:
    vector = _vector(name)
    source = _file(tmp_path, vector)
    computed = vector["expected"]["message_integrity_computed"]
    key = vector["credentials"]["hmac_key_hex"]
    without = runner.invoke(app, ["explain", source], env=WIDE)
    assert without.exit_code == 0, without.output
    assert "4. Needs the key to verify" in without.stdout and "INVALID" not in without.stdout
    right = runner.invoke(app, ["explain", source, *_right(vector)], env=WIDE).stdout
    assert f"key = {key}" in right
    assert f"= {computed}" in right  # the HMAC computed, as the RFC gives it
    assert f"carries {computed}: valid." in right
    wrong = runner.invoke(app, ["explain", source, *_wrong(vector)], env=WIDE).stdout
    assert "INVALID" in wrong and f"key = {key}\n" not in wrong


@needs_corpus
def test_explain_integrity_length_adjusted_when_fingerprint_follows(tmp_path: Path) -> None:
    vector = _vector("rfc5769_2.1")  # MESSAGE-INTEGRITY then FINGERPRINT: 8 bytes after it
    out = runner.invoke(app, ["explain", _file(tmp_path, vector), *_right(vector)], env=WIDE).stdout
    wire = bytes.fromhex(vector["hex"])
    sent = int.from_bytes(wire[2:4], "big")
    assert f"end just after it: {sent - 8} (0x{sent - 8:04x}) instead of {sent}" in out


@needs_corpus
def test_explain_fingerprint_walk_has_the_crc_and_the_xor(tmp_path: Path) -> None:
    vector = _vector("rfc5769_2.2")
    wire = bytes.fromhex(vector["hex"])
    out = runner.invoke(app, ["explain", _file(tmp_path, vector)], env=WIDE).stdout
    at = len(wire) - 8
    covered = wire[:at]
    crc = zlib.crc32(covered)
    assert f"covers bytes 0..{at - 1} ({at} bytes" in out
    assert f"of the {at} bytes = 0x{crc:08x}" in out
    assert f"= 0x{crc ^ 0x5354554E:08x}" in out
    assert f"carries 0x{int.from_bytes(wire[-4:], 'big'):08x}: valid." in out
    damaged = bytearray(wire)
    damaged[-1] ^= 1
    (tmp_path / "bad.bin").write_bytes(bytes(damaged))
    out = runner.invoke(app, ["explain", str(tmp_path / "bad.bin")], env=WIDE).stdout
    assert "INVALID (computed" in out


def test_explain_default_is_the_report_probe_with_its_type_bits() -> None:
    out = runner.invoke(app, ["explain"], env=WIDE).stdout
    assert "all-zero ID" in out and "Shadowserver" in out
    rows = [line for line in out.splitlines() if line.startswith(("│value", "│role"))]
    value = rows[0].replace("│", " ").split()[1:]
    role = rows[1].replace("│", " ").split()[1:]
    assert value == list("0000000000000001")
    assert role[7] == "C1" and role[11] == "C0" and role[2] == "M11" and role[-1] == "M0"


def test_explain_type_bits_of_an_error_response(tmp_path: Path) -> None:
    wire = proto.encode_message(proto.message_type(0x003, 3), bytes(12))  # Allocate error
    (tmp_path / "e.bin").write_bytes(wire)
    out = runner.invoke(app, ["explain", str(tmp_path / "e.bin")], env=WIDE).stdout
    assert "type 0x0113" in out and "= 0x003 (Allocate)" in out and "C1 C0 = 11 = 3" in out


def test_explain_coturn_answer_shows_the_budget_and_advice() -> None:
    out = runner.invoke(app, ["explain", str(PROJECT / "pcaps" / "coturn-udp.pcap")], env=WIDE)
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "SOFTWARE" in text and "removable" in text and "needed" in text
    assert "4.60x" in text  # 92 bytes against the report's 20
    assert "--no-software-attribute" in text and "--no-rfc5780" in text
    assert "32 bytes = 1.60x (IPv4)" in text
    assert "offer STUN over TCP only" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "zz"], "--key is not hex"),
        (["--username", "alice"], "--username and --realm need --password"),
        (["--key", "00", "--password", "x"], "give one"),
        (["--password", "a\u0007b"], "--password: SASLprep: prohibited"),
    ],
)
def test_credential_errors_are_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["explain", *args])
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_long_term_key_takes_bytes_as_sent_and_refuses_other_types() -> None:
    text = proto.long_term_key("alice", "example.org", "secret")
    assert proto.long_term_key(b"alice", b"example.org", "secret") == text
    assert proto.long_term_key("alice", b"example.org", b"secret") == text
    assert text == proto.hashlib.md5(b"alice:example.org:secret").digest()
    with pytest.raises(TypeError, match="realm must be str or bytes"):
        proto.long_term_key("alice", 42, "secret")  # type: ignore[arg-type]
    assert proto.userhash("alice", b"example.org") == proto.userhash("alice", "example.org")


def test_long_term_key_from_the_message_realm_and_username() -> None:
    wire = proto.encode_message(
        proto.message_type(0x001, 0),
        bytes(12),
        [(proto.USERNAME, b"alice"), (proto.REALM, b"example.org")],
    )
    derived = proto.derive_key(wire, proto.Credentials(password="secret", realm="example.org"))
    assert derived.key == proto.long_term_key("alice", "example.org", "secret")
    with pytest.raises(ValueError, match="needs the username"):
        proto.derive_key(proto.REFERENCE_PROBE, proto.Credentials(password="s", realm="r"))


def test_decode_checks_a_real_coturn_capture_taking_the_username_from_the_messages() -> None:
    capture = str(PROJECT / "pcaps" / "turn-allocate-401.pcap")
    # responses carry no USERNAME: without --username only the requests can be checked
    for args, expected, count in (
        (["--username", "alice", "--realm", "example.org", "--password", "secret"], True, 4),
        (["--realm", "example.org", "--password", "secret"], True, 2),  # USERNAME as sent
        (["--realm", "example.org", "--password", "wrong"], False, 2),
    ):
        result = runner.invoke(app, ["decode", "--json", "-", capture, *args])
        assert result.exit_code == 0, result.output
        checked = [json.loads(line)["integrity"] for line in result.stdout.splitlines()]
        signed = [c for c in checked if c]
        assert len(signed) == count
        assert all(c == {"MESSAGE-INTEGRITY": expected} for c in signed)


def test_a_key_that_cannot_be_made_is_said_once() -> None:
    capture = str(PROJECT / "pcaps" / "coturn-udp.pcap")  # no USERNAME anywhere
    result = runner.invoke(app, ["decode", capture, "--realm", "r", "--password", "p"])
    assert result.exit_code == 0
    assert result.stderr.count("needs the username") <= 1


@pytest.mark.parametrize("length", [0, 4, 19])
def test_an_integrity_attribute_of_the_wrong_size_never_verifies(length: int) -> None:
    """A zero-length HMAC would match the empty prefix of any digest: any key 'valid'."""
    wire = proto.encode_message(
        proto.message_type(0x001, 0), bytes(12), [(proto.MESSAGE_INTEGRITY, bytes(length))]
    )
    assert proto.check_integrity(wire, b"any key") is False
    ((_, _, ok),) = proto.integrity_results(wire, b"any key")
    assert ok is False
    sha = proto.encode_message(
        proto.message_type(0x001, 0), bytes(12), [(proto.MESSAGE_INTEGRITY_SHA256, bytes(length))]
    )
    assert proto.check_integrity(sha, b"any key") is False
