"""CI runs exactly the test command the README gives a newcomer."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in quickstart.strip().splitlines()]
    assert len(commands) == 2, "the quickstart is exactly two commands"
    test_command = commands[1]
    ci = (ROOT / ".ci" / "run").read_text()
    run_lines = [
        line.strip()
        for line in ci.splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "log "))
    ]
    assert run_lines[-1] == test_command
    assert re.search(r"^uv sync --frozen$", ci, re.MULTILINE)
