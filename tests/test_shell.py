"""``stunscan shell``: Scapy's console with the layers and captures preloaded, driven through
a pipe as a user would type into it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from stunscan.layers import STUN, make_attribute

SCRIPT = """\
p = STUN(type="Binding Request", transaction_id=bytes(12)) / make_attribute("SOFTWARE", value="hi")
print("BUILT", bytes(p).hex())
r = pcaps["coturn-udp"][1][STUN]
print("MAPPED", r.get_attribute("XOR-MAPPED-ADDRESS").decoded)
print("KEY", long_term_key("alice", b"example.org", "secret").hex())
explain(r)
exit()
"""


def _shell(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(tmp_path), "COLUMNS": "200", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "stunscan", "shell", *args],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    # Scapy's console colours its prompts and show() even into a pipe
    result.stdout = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    return result


def test_shell_banner_and_a_session_through_a_pipe(tmp_path: Path) -> None:
    result = _shell(tmp_path, SCRIPT)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Three things to try:" in out and out.count("  >>> ") == 3
    assert "pcaps: coturn-ipv6, coturn-tcp, coturn-udp, stund-classic, turn-allocate-401" in out
    expected = STUN(type="Binding Request", transaction_id=bytes(12)) / make_attribute(
        "SOFTWARE", value="hi"
    )
    assert f"BUILT {bytes(expected).hex()}" in out
    assert "MAPPED 127.0.0.1:" in out
    assert "KEY " + __import__("hashlib").md5(b"alice:example.org:secret").hexdigest() in out
    assert "Why it amplifies" in out and "--no-software-attribute" in out
    assert "Traceback" not in out + result.stderr


def test_shell_banner_tries_work_as_written(tmp_path: Path) -> None:
    from stunscan.shell import TRY

    script = "\n".join(line.split("#")[0] for line in TRY) + "\nprint('DONE')\n"
    result = _shell(tmp_path, script)
    assert result.returncode == 0, result.stderr
    assert "DONE" in result.stdout and "Traceback" not in result.stdout + result.stderr
    assert "XOR-MAPPED-ADDRESS" in result.stdout and "###[ STUN ]###" in result.stdout


def test_shell_without_captures_says_so(tmp_path: Path) -> None:
    result = _shell(tmp_path, "print(len(pcaps))\n", "--pcaps", str(tmp_path / "none"))
    assert "pcaps: none" in result.stdout and "\n0\n" in result.stdout.replace(">>> ", "\n")
