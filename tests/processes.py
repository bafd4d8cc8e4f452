"""Real processes for integration tests: free ports, waiting, and the broker subprocess.

Which Kafka an integration test talks to is chosen in :mod:`tests.kafka_modes`
(``SYNCPIPE_TEST_KAFKA``); :class:`BrokerProcess` is its ``embedded`` mode, and what the
broker's own tests (``tests/broker``) always use.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from syncpipe.supervisor import port_open

__all__ = ["REPO", "BrokerProcess", "free_port", "kill9", "port_open", "terminate", "wait_until"]

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.02, what: str = ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def terminate(proc: subprocess.Popen[bytes] | None, grace_s: float = 10.0) -> None:
    """SIGTERM a running process; SIGKILL it if it has not exited within ``grace_s``."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL, as a crash would, and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


class BrokerProcess:
    """A broker subprocess that can be killed (-9) and restarted on the same dir/port."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.metrics_port = free_port()
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-broker.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "SYNCPIPE_BROKER_PORT": str(self.port),
            "SYNCPIPE_BROKER_DATA_DIR": str(self.data_dir),
            "SYNCPIPE_BROKER_METRICS_PORT": str(self.metrics_port),
            "SYNCPIPE_BROKER_GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
            **self.extra_env,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the subprocess
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "broker"], cwd=REPO, env=env, stdout=log, stderr=log
        )
        log.close()
        proc = self.proc
        try:
            wait_until(
                lambda: port_open(self.port) or proc.poll() is not None, what="broker to listen"
            )
        except AssertionError:
            self.stop()
            raise AssertionError(f"broker did not listen on {self.port}:\n{self.log()}") from None
        if proc.poll() is not None:
            raise AssertionError(f"broker exited: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill9(self) -> None:
        assert self.proc is not None
        kill9(self.proc)

    def stop(self) -> None:
        terminate(self.proc)
        wait_until(lambda: not port_open(self.port), what="broker port to close")

    def restart(self, hard: bool = False) -> None:
        if hard:
            self.kill9()
        else:
            self.stop()
        self.start()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
