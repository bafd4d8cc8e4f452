"""perf/bench_pipeline.py end to end: a quick run on real processes writes sane numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "perf" / "bench_pipeline.py"


def test_quick_run_reports_throughputs_and_latency_of_every_posted_op(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.json"
    argv = [sys.executable, str(BENCH), "--quick", "--apply-ops", "500", "--seconds", "0.5"]
    argv += ["--rates", "20", "--rate-seconds", "2", "--json", str(out)]
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "(c) latency at 20 ops/s" in proc.stdout
    results = json.loads(out.read_text())

    apply = results["streams_apply"]
    assert apply["ops"] >= 1
    assert apply["ops_per_s"] > 0
    assert apply["ops_per_worker_cpu_s"] > 0
    for batch in ("batch_1", "batch_100"):
        assert results["ingest"][batch]["ops_per_s"] > 0

    (run,) = results["latency"]
    assert run["rate_ops_per_s"] == 20
    assert run["posted"] == 40
    assert run["ops_per_post"] == 10  # the default: clients send their outbox in batches
    assert set(run["cpu_per_s"]) == {"worker", "broker", "ingest", "client", "others"}
    assert all(v >= 0 for v in run["cpu_per_s"].values())
    assert run["not_accepted"] == 0
    assert 10 < run["offered_ops_per_s"] < 30
    assert run["missing_on_topic"] == 0
    assert run["missing_in_read_model"] == 0
    for where in ("entities_topic", "read_model"):
        lat = run[where]
        assert lat["count"] == 40
        assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"] <= lat["max_ms"] < 30_000


def test_bad_arguments_are_rejected_with_a_message() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--rates", "fast"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--rates must be numbers" in proc.stderr
    assert "Traceback" not in proc.stderr
