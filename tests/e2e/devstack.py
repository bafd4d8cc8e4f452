"""``syncpipe dev`` as a real subprocess on free ports, for the dev and full-stack tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from tests.processes import REPO, free_port, port_open

PORT_NAMES = ("kafka", "redis", "streams", "ingest", "push", "pwa")


def dev_env(data_dir: Path, ports: dict[str, int], **extra: str) -> dict[str, str]:
    """The caller's environment without its SYNCPIPE_* settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_")}
    for name, port in ports.items():
        var = (
            "SYNCPIPE_STREAMS_METRICS_PORT"
            if name == "streams"
            else f"SYNCPIPE_DEV_{name.upper()}_PORT"
        )
        env[var] = str(port)
    env["SYNCPIPE_DEV_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def free_ports() -> dict[str, int]:
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(PORT_NAMES):
        ports = {name: free_port() for name in PORT_NAMES}
    return ports


def run_dev(
    args: list[str], env: dict[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``syncpipe dev`` to completion (for the ones that must refuse to start)."""
    return subprocess.run(
        [sys.executable, "-m", "syncpipe", "dev", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


class DevProcess:
    """One ``syncpipe dev`` whose combined output goes to a file we poll."""

    def __init__(self, data_dir: Path, out: Path, ports: dict[str, int] | None = None) -> None:
        self.data_dir = data_dir
        self.out = out
        self.ports = ports or free_ports()
        self.proc: subprocess.Popen[bytes] | None = None
        self.descendants: list[psutil.Process] = []
        self._offset = 0

    def start(self, *args: str, **env: str) -> None:
        self._offset = self.out.stat().st_size if self.out.exists() else 0
        with self.out.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "syncpipe", "dev", "--no-build-pwa", *args],
                cwd=REPO, env=dev_env(self.data_dir, self.ports, **env),
                stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        """What this run (since the last start) printed."""
        with self.out.open("rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout_s: float = 180) -> str:
        deadline = time.monotonic() + timeout_s
        while True:
            out = self.output()
            if predicate(out):
                return out
            assert self.proc is not None
            assert self.proc.poll() is None, f"syncpipe dev exited early:\n{out[-6000:]}"
            assert time.monotonic() < deadline, f"no {what} in {timeout_s} s:\n{out[-6000:]}"
            time.sleep(0.1)

    def wait_for_output(self, text: str, timeout_s: float = 180) -> str:
        return self.wait_for(lambda out: text in out, repr(text), timeout_s)

    def wait_up(self, timeout_s: float = 180) -> str:
        out = self.wait_for_output("syncpipe dev is up", timeout_s)
        assert self.proc is not None
        self.descendants = psutil.Process(self.proc.pid).children(recursive=True)
        return out

    def token(self) -> str:
        match = re.search(r"^\s+token\s+(\S+)\s*$", self.output(), re.M)
        assert match, self.output()
        return match.group(1)

    def pid_of(self, component: str) -> int:
        """The newest pid the supervisor reported for ``component``."""
        pids = re.findall(rf"^\[dev\] started {component} \(pid (\d+)\)", self.output(), re.M)
        assert pids, self.output()
        return int(pids[-1])

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout_s: float = 60) -> int:
        """Signal dev, wait for it, and check it left nothing running and no port busy."""
        assert self.proc is not None
        self.descendants += psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout_s)
        alive = [p for p in self.descendants if _alive(p)]
        assert not alive, f"left running after stop: {alive}\n{self.output()[-3000:]}"
        busy = [port for port in self.ports.values() if port_open(port)]
        assert not busy, f"ports still open after stop: {busy}"
        return code

    def kill(self) -> None:
        """Last-resort cleanup: signal dev, then kill it and everything it started."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in self.descendants:
            if _alive(p):
                p.kill()


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
