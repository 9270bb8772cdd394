"""``pcap --password/--username/--realm/--key``: MESSAGE-INTEGRITY checked in captures.

The project's ``pcaps/turn-allocate-401.pcap`` holds a real coturn exchange: an Allocate
without credentials (401), then an Allocate and a Refresh signed with the long-term key of
alice / example.org / secret, and their signed answers.
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from stunscan import protocol as proto
from stunscan.cli import app
from stunscan.jsonshape import validator

CAPTURE = Path(__file__).resolve().parent.parent / "pcaps" / "turn-allocate-401.pcap"
runner = CliRunner()


def _rows(*args: str) -> tuple[list[dict[str, object]], str]:
    result = runner.invoke(app, ["pcap", "--all-messages", "--json", "-", *args, str(CAPTURE)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return rows, result.stderr


def test_the_right_long_term_password_verifies_every_signed_message() -> None:
    rows, summary = _rows("--username", "alice", "--realm", "example.org", "--password", "secret")
    check = validator("pcap")
    for row in rows:
        check.validate(row)
    signed = [row["integrity"] for row in rows if row["integrity"]]
    assert signed == [{"MESSAGE-INTEGRITY": True}] * 4
    assert "MESSAGE-INTEGRITY checked: 4 valid, 0 INVALID" in summary


def test_a_wrong_password_or_key_is_invalid() -> None:
    rows, summary = _rows("--username", "alice", "--realm", "example.org", "--password", "nope")
    assert [row["integrity"] for row in rows if row["integrity"]] == [
        {"MESSAGE-INTEGRITY": False}
    ] * 4
    assert "0 valid, 4 INVALID" in summary
    key = proto.long_term_key("alice", "example.org", "secret").hex()
    rows, summary = _rows("--key", key)
    assert "4 valid, 0 INVALID" in summary
    rows, summary = _rows("--key", "00" * 16)
    assert "0 valid, 4 INVALID" in summary


def test_a_response_with_no_username_has_no_key_and_says_why_once() -> None:
    """Answers carry no USERNAME: with only a password and no --username they can't be
    checked, and the summary says how many, with the reason as one warning."""
    rows, summary = _rows("--password", "secret", "--realm", "example.org")
    assert "messages with no key to check" in summary
    assert summary.count("stunscan: warning:") == 1
    assert all("integrity" not in row for row in rows if row["direction"] == "response")


def test_without_credentials_rows_have_no_integrity_field() -> None:
    rows, summary = _rows()
    assert rows and all("integrity" not in row for row in rows)
    assert "MESSAGE-INTEGRITY checked" not in summary
