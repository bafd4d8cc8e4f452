"""perf/bench.py end to end: a tiny run against a real `syncpipe dev` writes sane results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "perf" / "bench.py"
sys.path.insert(0, str(REPO / "perf"))

from e2e_client import STEP_SPAN, bench_field, deliveries  # noqa: E402


def state(n: int, posted_ms: float) -> bytes:
    register = {
        "value": bench_field(n, posted_ms),
        "hlc": "001-0000-c",
        "client_id": "c",
        "op_id": "o",
    }
    return orjson.dumps(
        {"tenant": "t", "collection": "tasks", "entity_id": f"e{n}", "version": 1,
         "fields": {"bench": register, "title": {**register, "value": "x"}},
         "received_at_ms": 1}
    )  # fmt: skip


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (b'{"type":"entity","state":' + state(7, 1.5) + b',"cursor":"v1:0=1"}', [(7, 1.5)]),
        (
            b'{"type":"batch","messages":[{"type":"entity","state":' + state(1, 2.0)
            + b',"cursor":"a"},{"type":"entity","state":' + state(STEP_SPAN + 2, 3.25)
            + b',"cursor":"b"}]}',
            [(1, 2.0), (STEP_SPAN + 2, 3.25)],
        ),
        (
            b'{"type":"snapshot","collection":"tasks","entities":[' + state(1, 2.0)
            + b'],"cursor":"a","resumed":false}',
            [],
        ),
        (
            b'{"type":"batch","messages":[{"type":"snapshot","collection":"tasks","entities":['
            + state(1, 2.0) + b'],"cursor":"a","resumed":false},{"type":"entity","state":'
            + state(3, 4.0) + b',"cursor":"b"}]}',
            [(3, 4.0)],
        ),
        (b'{"type":"pong"}', []),
    ],
    ids=["entity", "batch", "snapshot-is-not-a-delivery", "batch-with-snapshot", "pong"],
)  # fmt: skip
def test_deliveries_counts_entity_states_not_snapshots(
    frame: bytes, expected: list[tuple[int, float]]
) -> None:
    assert deliveries(frame) == expected


def run_bench(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rates", "fast"], "--rates: 'fast' is neither ops/s"),
        (["--rates", "0x"], "--rates: give positive rates"),
        (["--duration", "0"], "--duration must be positive"),
        (["--profile", "everyone"], "invalid choice"),
    ],
    ids=["rates-word", "rates-zero", "duration-zero", "profile-unknown"],
)
def test_bench_rejects_bad_options_with_a_message(args: list[str], message: str) -> None:
    proc = run_bench(*args, timeout=60)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_help_lists_the_options() -> None:
    proc = run_bench("--help", timeout=60)
    assert proc.returncode == 0
    for option in ("--profile", "--duration", "--rates", "--out", "--quick", "--check", "--attach"):
        assert option in proc.stdout


def check_step(step: dict[str, Any], subscribers: int) -> None:
    lat = step["latency_ms"]
    assert step["accepted_ops"] > 0
    assert step["deliveries_expected"] == step["accepted_ops"] * subscribers
    assert 0 < step["deliveries_got"] <= step["deliveries_expected"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"] < 60_000
    assert step["missing"] == step["deliveries_expected"] - step["deliveries_got"]
    for component in ("ingest", "push", "streams", "broker", "client (subscribers)"):
        assert step["cpu_pct"][component] >= 0
        assert step["rss_mib"][component] > 1


@pytest.mark.slow
def test_bench_quick_run_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    proc = run_bench("--quick", "--out", str(tmp_path), timeout=110)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[teams] step 1/2" in proc.stdout  # progress lines while it runs

    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["machine"]["cores"] >= 1
    assert set(result["profiles"]) == {"teams", "broadcast"}
    for prof in result["profiles"].values():
        assert prof["steps"], prof
        for step in prof["steps"]:
            check_step(step, prof["subscribers_per_tenant"])
        assert prof["target"]["measured"] is True
        assert prof["max_rate_p99_le_250ms"] is None or prof["max_rate_p99_le_250ms"] > 0

    md = (tmp_path / "bench.md").read_text()
    assert "## teams" in md
    assert "## broadcast" in md
    assert "| p50 ms | p95 ms | p99 ms | max ms |" in md
    assert "2 cores" in md or f"{result['machine']['cores']} cores" in md

    png = (tmp_path / "bench.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000


@pytest.mark.slow
def test_bench_attaches_to_a_running_system_and_finds_its_components(tmp_path: Path) -> None:
    from e2e_system import DevSystem

    with DevSystem() as system:
        proc = run_bench(
            "--quick", "--attach", "--profile", "broadcast", "--rates", "1x",
            "--ingest-url", system.endpoints.ingest_url, "--push-url", system.endpoints.push_url,
            "--out", str(tmp_path), timeout=90,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["system"].startswith("attached to a running system")
    (step,) = result["profiles"]["broadcast"]["steps"]
    check_step(step, result["profiles"]["broadcast"]["subscribers_per_tenant"])
