"""The README's promises: CI runs its test command verbatim."""

from __future__ import annotations

import re

from corpus import PROJECT


def _commands() -> list[str]:
    readme = (PROJECT / "README.md").read_text()
    section = readme.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands() -> None:
    commands = _commands()
    assert len(commands) == 2
    assert "stunscan" in commands[0] and "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (PROJECT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci
