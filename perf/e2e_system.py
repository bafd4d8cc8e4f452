"""The system under test for the end-to-end bench: start or attach, find and sample processes.

``DevSystem`` runs ``syncpipe dev`` (embedded broker, Redis, streams, ingest, push) on free
ports with a fresh temporary data dir and stops it afterwards; ``attach`` uses a running
system given its URLs. Either way the component processes are found with psutil (the
supervisor's children, named by their command line) so ``Sampler`` can report CPU (% of
one core) and resident memory per component, and the bench's own client processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from bench_ingest import free_port

REPO = Path(__file__).resolve().parents[1]
OTHER = "other processes"
IRQ = "kernel irq"
STEAL = "steal"

# Settings of the system the bench starts, so that per-tenant rate limits in ingest do not
# distort the benchmark (every op of the load comes from one client id per tenant).
DEV_ENV = {
    "SYNCPIPE_INGEST_RATE_LIMIT_OPS_PER_S": "1000000",
    "SYNCPIPE_INGEST_RATE_LIMIT_BURST_OPS": "1000000",
    "SYNCPIPE_PUSH_MAX_CONNECTIONS": "20000",
}


def component_of(cmdline: list[str]) -> str | None:
    """Which syncpipe component a process is, from its command line."""
    if not cmdline:
        return None
    if "redis-server" in Path(cmdline[0]).name:
        return "redis"
    args = cmdline[1:]
    if args[:2] == ["-m", "broker"]:
        return "broker"
    for i, arg in enumerate(args):
        if arg == "syncpipe" or arg.endswith("/syncpipe"):
            sub = args[i + 1] if i + 1 < len(args) else ""
            if sub in ("streams", "ingest", "push"):
                return sub
            if sub == "serve-pwa":
                return "pwa"
            if sub == "dev":
                return "supervisor"
    return None


@dataclass
class Endpoints:
    ingest_url: str
    push_url: str  # ws://host:port/v1/ws

    @property
    def ingest_port(self) -> int:
        return urlsplit(self.ingest_url).port or 80

    @property
    def push_port(self) -> int:
        return urlsplit(self.push_url).port or 80

    @property
    def push_metrics_url(self) -> str:
        parts = urlsplit(self.push_url)
        return f"http://{parts.netloc}/metrics"


@dataclass
class Processes:
    """Component name -> pids, plus the bench's own client processes."""

    pids: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, pid: int) -> None:
        self.pids.setdefault(name, []).append(pid)

    @classmethod
    def tree(cls, root: int) -> Processes:
        procs = cls()
        try:
            top = psutil.Process(root)
            for proc in [top, *top.children(recursive=True)]:
                try:
                    name = component_of(proc.cmdline())
                except psutil.Error:
                    continue
                if name is not None:
                    procs.add(name, proc.pid)
        except psutil.Error:
            pass
        return procs

    @classmethod
    def listening(cls, ports: dict[str, int]) -> Processes:
        """Processes of a running system: the supervisor of whatever listens on the given
        ports when it is ``syncpipe dev``, else just those listeners."""
        procs = cls()
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status != psutil.CONN_LISTEN or conn.pid is None:
                continue
            for name, port in ports.items():
                if conn.laddr.port == port:
                    try:
                        parent = psutil.Process(conn.pid).parent()
                        if parent is not None and component_of(parent.cmdline()) == "supervisor":
                            return cls.tree(parent.pid)
                    except psutil.Error:
                        pass
                    procs.add(name, conn.pid)
        return procs


class Sampler:
    """CPU seconds and peak RSS per component between ``start`` and ``stop``."""

    def __init__(self, procs: Processes) -> None:
        self.handles: dict[str, list[psutil.Process]] = {}
        for name, pids in procs.pids.items():
            for pid in pids:
                try:
                    self.handles.setdefault(name, []).append(psutil.Process(pid))
                except psutil.Error:
                    continue
        self.cpu0: dict[tuple[str, int], float] = {}
        self.t0 = 0.0
        self.busy0 = (0.0, 0.0, 0.0)
        self.rss_peak: dict[str, float] = {}

    def _cpu(self) -> dict[tuple[str, int], float]:
        """CPU seconds so far per (component, pid); processes that are gone are left out."""
        out: dict[tuple[str, int], float] = {}
        for name, handles in self.handles.items():
            for proc in handles:
                try:
                    t = proc.cpu_times()
                except psutil.Error:
                    continue
                out[name, proc.pid] = t.user + t.system
        return out

    @staticmethod
    def _busy() -> tuple[float, float, float]:
        """Machine-wide CPU seconds (all cores): processes (user, nice, system), interrupt
        handling (irq, softirq: loopback TCP is largely softirq) and steal."""
        t = psutil.cpu_times()
        irq = getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        return float(t.user + t.nice + t.system), float(irq), float(getattr(t, "steal", 0.0))

    def start(self) -> None:
        self.cpu0, self.t0, self.rss_peak = self._cpu(), time.monotonic(), {}
        self.busy0 = self._busy()
        self.sample()

    def sample(self) -> None:
        for name, handles in self.handles.items():
            rss = 0.0
            for proc in handles:
                try:
                    rss += proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
            self.rss_peak[name] = max(self.rss_peak.get(name, 0.0), rss)

    def stop(self) -> tuple[dict[str, float], dict[str, float]]:
        """(CPU % of one core, peak RSS MiB) per component since ``start``."""
        self.sample()
        elapsed = max(time.monotonic() - self.t0, 1e-9)
        cpu = self._cpu()
        pct = {name: 0.0 for name in self.handles}
        for (name, pid), seconds in cpu.items():
            if (name, pid) in self.cpu0:  # a process that died or restarted meanwhile is not
                pct[name] += 100 * (seconds - self.cpu0[name, pid]) / elapsed
        # everything else running on the machine meanwhile (other work skews the numbers)
        now = self._busy()
        procs, irq, steal = (100 * (b - a) / elapsed for a, b in zip(self.busy0, now, strict=True))
        pct[OTHER] = max(0.0, procs - sum(pct.values()))
        pct[IRQ] = irq
        if steal >= 1:
            pct[STEAL] = steal
        return pct, dict(self.rss_peak)


class DevSystem:
    """``syncpipe dev`` on free ports with a fresh data dir; a context manager."""

    def __init__(self, ready_timeout_s: float = 90.0) -> None:
        self.ready_timeout_s = ready_timeout_s
        self.work = Path(tempfile.mkdtemp(prefix="syncpipe-bench-"))
        self.log_path = self.work / "dev.log"
        ports = {k: free_port() for k in ("kafka", "redis", "ingest", "push", "pwa", "metrics")}
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SYNCPIPE_KAFKA_BOOTSTRAP", "SYNCPIPE_REDIS_URL")
        }
        self.env.update(DEV_ENV)
        self.env.update(
            {
                "SYNCPIPE_DEV_DATA_DIR": str(self.work / "data"),
                "SYNCPIPE_DEV_KAFKA_PORT": str(ports["kafka"]),
                "SYNCPIPE_DEV_REDIS_PORT": str(ports["redis"]),
                "SYNCPIPE_DEV_INGEST_PORT": str(ports["ingest"]),
                "SYNCPIPE_DEV_PUSH_PORT": str(ports["push"]),
                "SYNCPIPE_DEV_PWA_PORT": str(ports["pwa"]),
                "SYNCPIPE_STREAMS_METRICS_PORT": str(ports["metrics"]),
            }
        )
        self.endpoints = Endpoints(
            f"http://127.0.0.1:{ports['ingest']}", f"ws://127.0.0.1:{ports['push']}/v1/ws"
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.tree = Processes()

    def __enter__(self) -> DevSystem:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "syncpipe", "dev", "--no-build-pwa"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the bench, which stops dev in order
            )
        try:
            self._wait_up()
        except BaseException:
            self.stop()
            raise
        self.tree = Processes.tree(self.proc.pid)
        return self

    def _wait_up(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while b"syncpipe dev is up" not in self.log_path.read_bytes():
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"syncpipe dev exited with {self.proc.returncode} before it was up:\n"
                    + self.log_tail()
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"syncpipe dev was not up within {self.ready_timeout_s:.0f} s:\n"
                    + self.log_tail()
                )
            time.sleep(0.1)

    def problems(self, limit: int = 5) -> list[str]:
        """The last error and critical log lines of the components (for failure messages)."""
        found: list[str] = []
        for log in sorted((self.work / "data" / "logs").glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if '"level":"error"' in line or '"level":"critical"' in line:
                    found.append(f"{log.stem}: {line[:400]}")
        return found[-limit:]

    def check_running(self) -> None:
        """Raise if ``syncpipe dev`` or one of its components is gone or was restarted."""
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"syncpipe dev exited with {code} during the run")
        now = Processes.tree(self.proc.pid)
        for name, pids in self.tree.pids.items():
            if sorted(now.pids.get(name, [])) != sorted(pids):
                raise RuntimeError(f"{name} exited or was restarted by syncpipe dev during the run")

    def log_tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self) -> None:
        """SIGINT to the supervisor (it stops its children in order); SIGKILL leftovers."""
        if self.proc is not None and self.proc.poll() is None:
            children = []
            with contextlib.suppress(psutil.Error):
                children = psutil.Process(self.proc.pid).children(recursive=True)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            for child in children:
                try:
                    child.kill()
                except psutil.Error:
                    continue

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)
