"""The Dockerfile: PWA built in a node stage, services on python:3.11-slim via uv, non-root."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field

import pytest

from tests.deploy.conftest import DOCKERFILE, ROOT

DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.instructions if kw == keyword]


def logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined, comments and blanks dropped."""
    out: list[str] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        out.append(buf + line)
        buf = ""
    return out


def parse() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with ${ARG} substituted in FROM lines."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(DOCKERFILE.read_text(encoding="utf-8")):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest).split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse()[1]


def test_pwa_is_built_in_a_node_20_stage(stages: list[Stage]) -> None:
    node = [s for s in stages if s.base.startswith("node:20")]
    assert len(node) == 1
    runs = " ; ".join(node[0].args("RUN"))
    assert "npm ci" in runs
    assert "npm run build" in runs
    assert runs.index("npm ci") < runs.index("npm run build")
    final = stages[-1]
    copies = [c for c in final.args("COPY") if c.startswith(f"--from={node[0].name} ")]
    assert copies, "the final image copies the PWA build"
    assert copies[0].split()[1].endswith("/pwa/dist")


def test_services_run_on_python_311_slim(stages: list[Stage]) -> None:
    assert stages[-1].base == "python:3.11-slim"


def test_uv_comes_from_pip_and_every_sync_is_frozen_without_dev(stages: list[Stage]) -> None:
    runs = stages[-1].args("RUN")
    assert any(re.search(r"\bpip install\b.*\buv\b", r) for r in runs), "uv installed via pip"
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs
    for sync in syncs:
        words = shlex.split(sync)
        assert "--frozen" in words, sync
        assert "--no-dev" in words, sync
    assert any("--no-install-project" not in s for s in syncs), "the project itself is installed"


def test_runs_as_a_non_root_user(stages: list[Stage]) -> None:
    users = stages[-1].args("USER")
    assert users, "USER is set"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_entrypoint_is_the_syncpipe_cli(stages: list[Stage]) -> None:
    entrypoints = stages[-1].args("ENTRYPOINT")
    assert [json.loads(e) for e in entrypoints][-1] == ["syncpipe"]


def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(path: str) -> bool:
    """Does .dockerignore leave ``path`` (relative, posix) out of the build context?"""
    result = False
    parts = path.split("/")
    for pattern in ignore_patterns():
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").removeprefix("**/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        names = [*prefixes, *parts]
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in names):
            result = not negate
    return result


def test_every_copied_source_exists_and_is_in_the_build_context(stages: list[Stage]) -> None:
    for stage in stages:
        for copy in stage.args("COPY"):
            words = [w for w in copy.split() if not w.startswith("--")]
            if copy.startswith("--from="):
                continue
            for src in words[:-1]:
                rel = src.rstrip("/")
                assert (ROOT / rel).exists(), f"COPY {src}: missing"
                assert not ignored(rel), f"COPY {src}: excluded by .dockerignore"


@pytest.mark.parametrize(
    "path",
    [".venv", ".git", "pwa/node_modules", "pwa/dist", ".syncpipe", "ingest/__pycache__"],
)
def test_dockerignore_keeps_local_state_out(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path", ["uv.lock", "pyproject.toml", "README.md", "pwa/package-lock.json", "streams/app.py"]
)
def test_dockerignore_keeps_what_the_build_needs(path: str) -> None:
    assert not ignored(path)
