"""``syncpipe dev`` runs every available component and stops them all, as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from syncpipe.commands.dev import available_components
from syncpipe.supervisor import port_open
from tests.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


class DevProcess:
    def __init__(self, proc: subprocess.Popen[str], ports: dict[str, int], out: Path) -> None:
        self.proc, self.ports, self.out = proc, ports, out

    def output(self) -> str:
        return self.out.read_text()

    def wait_for_output(self, text: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            assert self.proc.poll() is None, f"syncpipe dev exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in time:\n{self.output()}"
            time.sleep(0.1)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    ports = {name: free_port() for name in ("kafka", "redis", "ingest", "push", "pwa")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCPIPE_")}
    env.update({f"SYNCPIPE_DEV_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    env["SYNCPIPE_DEV_DATA_DIR"] = str(tmp_path / "data")
    out = tmp_path / "dev.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncpipe", "dev"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    handle = DevProcess(proc, ports, out)
    try:
        yield handle
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_healthy(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} not healthy in time"
        time.sleep(0.1)


def test_dev_starts_available_components_restarts_a_killed_one_and_stops_all(
    dev: DevProcess,
) -> None:
    have = available_components()
    dev.wait_for_output("syncpipe dev is up")
    out = dev.output()
    assert "token    ey" in out
    for name, ok in have.items():
        if not ok:
            assert f"{name}: not available in this version" in out
    if have["broker"]:
        assert port_open(dev.ports["kafka"])
    assert port_open(dev.ports["redis"])
    if have["ingest"]:
        wait_healthy(f"http://127.0.0.1:{dev.ports['ingest']}/healthz")
    if have["push"]:
        wait_healthy(f"http://127.0.0.1:{dev.ports['push']}/healthz")
    if have["ingest"] and have["push"]:
        config = httpx.get(f"http://127.0.0.1:{dev.ports['pwa']}/config.js", timeout=5)
        assert f"http://127.0.0.1:{dev.ports['ingest']}" in config.text

    # kill -9 one child: the supervisor brings it back.
    victim = "ingest" if have["ingest"] else "redis"
    children = psutil.Process(dev.proc.pid).children()
    pid = next(c.pid for c in children if victim in " ".join(c.cmdline()))
    os.kill(pid, signal.SIGKILL)
    dev.wait_for_output('"event":"exited; restarting","component":"' + victim)
    if victim == "ingest":
        wait_healthy(f"http://127.0.0.1:{dev.ports['ingest']}/healthz")
    else:
        deadline = time.monotonic() + 30
        while not port_open(dev.ports["redis"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)

    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(timeout=30) == 0
    for port in dev.ports.values():
        assert not port_open(port), f"port {port} still open after stop"
