"""The dependency rules of DESIGN.md hold, and a change that breaks one fails lint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("syncpipe", "schemas", "broker", "ingest", "streams", "push")
LINT_IMPORTS = shutil.which("lint-imports", path=str(Path(sys.executable).parent))


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    assert LINT_IMPORTS is not None, "import-linter is a dev dependency: run `uv sync`"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Empty packages with the real import-linter contracts."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    # Allowed edges, so the clean tree exercises every contract.
    (tmp_path / "syncpipe" / "wiring.py").write_text(
        "import broker, ingest, push, schemas, streams\n"
    )
    for pkg in ("ingest", "streams", "push"):
        (tmp_path / pkg / "uses_contract.py").write_text("import schemas\n")
    return tmp_path


def test_the_real_tree_keeps_the_contracts() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_allowed_imports_pass(tree: Path) -> None:
    proc = lint_imports(tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        ("ingest", "push", "services never import each other"),
        ("streams", "ingest", "services never import each other"),
        ("push", "broker", "services never import each other"),
        ("broker", "schemas", "broker imports nothing of ours"),
        ("schemas", "streams", "schemas imports none of our packages"),
        ("push", "syncpipe", "nothing imports the composition root"),
    ],
    ids=lambda v: str(v),
)
def test_forbidden_import_fails_lint(
    tree: Path, importer: str, imported: str, contract: str
) -> None:
    (tree / importer / "bad.py").write_text(f"import {imported}\n")
    proc = lint_imports(tree)
    assert proc.returncode != 0
    assert contract in proc.stdout
    assert "BROKEN" in proc.stdout
