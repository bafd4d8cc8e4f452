"""Real processes for the Kafka integration tests: ``python -m push`` and the embedded broker.

Both run on free ports; readiness is waited for with deadlines, never fixed sleeps. The tests
take their Kafka from the ``kafka``/``stoppable_kafka`` fixtures (any ``SYNCPIPE_TEST_KAFKA``
mode); :func:`start_broker` stays for direct users such as the push benchmark.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from tests import processes
from tests.processes import free_port, port_open, terminate

REPO = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], bool], within: float, what: str) -> None:
    processes.wait_until(predicate, timeout=within, what=what)


class Process:
    """A subprocess with its log in a file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=log
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        terminate(self.proc)


def start_broker(data_dir: Path, port: int | None = None) -> tuple[Process, str]:
    """``python -m broker`` on ``port`` (a free one by default) with ``data_dir``."""
    port = port or free_port()
    env = {
        "SYNCPIPE_BROKER_PORT": str(port),
        "SYNCPIPE_BROKER_DATA_DIR": str(data_dir),
        "SYNCPIPE_BROKER_METRICS_PORT": str(free_port()),
    }
    proc = Process("broker", [sys.executable, "-m", "broker"], env, data_dir.parent)
    try:
        wait_until(lambda: port_open(port) or not proc.alive(), 20, "broker to listen")
        if not proc.alive():
            raise AssertionError("broker exited")
    except AssertionError as exc:
        proc.stop()
        raise AssertionError(f"{exc}:\n{proc.log()}") from None
    return proc, f"127.0.0.1:{port}"


def start_push(env: dict[str, str], log_dir: Path) -> tuple[Process, int]:
    """``python -m push`` with ``env``; returns once /readyz says the source consumes."""
    port = free_port()
    proc = Process(
        "push",
        [sys.executable, "-m", "push", "--port", str(port)],
        {"SYNCPIPE_LOG_LEVEL": "INFO", **env},
        log_dir,
    )

    def ready() -> bool:
        if not proc.alive():
            return True
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 30, "push /readyz")
        if not proc.alive():
            raise AssertionError("push exited")
    except AssertionError as exc:
        proc.stop()
        raise AssertionError(f"{exc}:\n{proc.log()}") from None
    return proc, port
