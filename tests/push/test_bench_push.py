"""perf/bench_push.py stays runnable: its in-process pass-cost mode drives the real hub,
writers and uvicorn protocol objects, and checks every socket got one frame per pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_push_pass_cost_writes_one_frame_per_socket_per_pass() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "perf" / "bench_push.py"),
            "--pass-cost",
            "--connections",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    costs = re.findall(r"(\d+) message\(s\) per frame: +([\d.]+) us per socket", done.stdout)
    assert [batch for batch, _ in costs] == ["1", "10"], done.stdout
    assert all(float(us) > 0 for _, us in costs)
