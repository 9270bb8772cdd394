"""docs/tutorial.md can never go stale: every Python block runs, in order and in one
namespace, against a real coturn on loopback (its port put where the tutorial says
``SERVER = ("127.0.0.1", 3478)`` or ``127.0.0.1:3478``), every ``stunscan`` shell line
runs too, and each output block shown after a block is what it printed (``…`` stands for
what changes between runs)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_servers import LabServer, coturn

from corpus import PROJECT

TUTORIAL = PROJECT / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str, str | None]]:
    """(language, code, the output block that follows it or None)."""
    found = [(m.group(1), m.group(2)) for m in FENCE.finditer(TUTORIAL.read_text())]
    out = []
    for index, (lang, code) in enumerate(found):
        if lang not in ("python", "sh"):
            continue
        following = found[index + 1] if index + 1 < len(found) else None
        expected = following[1] if following and following[0] == "text" else None
        out.append((lang, code, expected))
    return out


def _pattern(line: str) -> str:
    return ".*?".join(re.escape(part) for part in line.split("…"))


def assert_shown(expected: str, actual: str, *, whole_lines: bool) -> None:
    """Each expected line matches an actual line, in order."""
    lines = iter(actual.splitlines())
    for want in (w.rstrip() for w in expected.splitlines() if w.strip()):
        pattern = re.compile(_pattern(want))
        for line in lines:
            hit = pattern.fullmatch(line.rstrip()) if whole_lines else pattern.search(line)
            if hit:
                break
        else:
            raise AssertionError(f"not printed: {want!r}\n--- printed:\n{actual}")


@pytest.fixture(scope="module")
def server() -> Iterator[LabServer]:
    with coturn() as running:  # 127.0.0.1 and ::1, as the tutorial starts it
        yield running


def _localised(code: str, server: LabServer) -> str:
    code = code.replace('SERVER = ("127.0.0.1", 3478)', f'SERVER = ("127.0.0.1", {server.port})')
    return code.replace("127.0.0.1:3478", f"127.0.0.1:{server.port}")


def test_tutorial_has_the_steps_it_promises() -> None:
    kinds = [lang for lang, _, _ in blocks()]
    assert kinds.count("python") >= 9 and kinds.count("sh") >= 3
    assert all(expected is not None for _, _, expected in blocks()[:-1])
    assert 'SERVER = ("127.0.0.1", 3478)' in TUTORIAL.read_text()


def test_every_block_runs_and_prints_what_the_tutorial_shows(
    server: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PROJECT)
    namespace: dict[str, object] = {"__name__": "tutorial"}
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    for number, (lang, code, expected) in enumerate(blocks(), 1):
        code = _localised(code, server)
        if lang == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{TUTORIAL}:block{number}", "exec"), namespace)
            output = printed.getvalue()
        else:
            output = ""
            for line in code.splitlines():
                if not line.startswith("stunscan "):
                    continue
                args = shlex.split(line)[1:]
                result = subprocess.run(
                    [sys.executable, "-m", "stunscan", *args],
                    capture_output=True,
                    text=True,
                    cwd=PROJECT,
                    env=env,
                    timeout=60,
                    check=False,
                )
                assert result.returncode == 0, (line, result.stderr)
                output += result.stdout
        if expected is not None:
            assert_shown(expected, output, whole_lines=lang == "python")


def test_a_wrong_output_would_be_caught() -> None:
    with pytest.raises(AssertionError, match="not printed"):
        assert_shown("92 bytes / 20 = 4.60x", "140 bytes / 20 = 7.00x", whole_lines=True)
    assert_shown("port 0x… xor 0x2112 = …", "port 0xc96b xor 0x2112 = 59513", whole_lines=True)


def test_tutorial_sends_only_to_loopback() -> None:
    text = TUTORIAL.read_text()
    addresses = set(re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text))
    assert addresses <= {"127.0.0.1", "0.0.0.0"}, addresses
    assert Path(TUTORIAL).is_file()
