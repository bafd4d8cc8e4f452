"""Streams apply throughput through real processes: broker, Redis, one worker.

Preloads N ops on the ops topic, starts one ``python -m streams`` worker and measures
ops reconciled per second from its ``syncpipe_streams_ops_applied_total`` counter (first
op applied → last), with the CPU the worker and the broker used meanwhile (on a shared
machine, ops per worker CPU-second is the steadier number).
Usage: ``uv run python perf/bench_streams.py [--ops N] [--entities N] [--repeat N]``.
Needs ``redis-server`` on PATH (or SYNCPIPE_REDIS_URL). Target: >= 5,000 ops/s per worker.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.topics import Topics
from streams.provision import ensure_topics
from tests.redis_server import redis_url
from tests.streams.helpers import Broker, Worker, hlc, op_record, produce_ops

TARGET_OPS_PER_S = 5_000


@dataclass
class ApplyResult:
    ops: int
    seconds: float
    cpu: dict[str, float]
    """CPU seconds per second of each measured process."""

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds if self.seconds else 0.0

    @property
    def ops_per_worker_cpu_s(self) -> float:
        cpu = self.cpu.get("worker", 0.0) * self.seconds
        return self.ops / cpu if cpu else 0.0

    def line(self) -> str:
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in self.cpu.items())
        return (
            f"streams apply: {self.ops} ops in {self.seconds:.2f}s = {self.ops_per_s:,.0f} ops/s "
            f"({self.ops_per_worker_cpu_s:,.0f} ops per worker CPU-second; CPU/s: {cpu})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "ops_per_s": round(self.ops_per_s, 1),
            "ops_per_worker_cpu_s": round(self.ops_per_worker_cpu_s, 1),
            "cpu_per_s": {k: round(v, 3) for k, v in self.cpu.items()},
        }


def applied(worker: Worker) -> float:
    """Ops the worker reconciled so far (0 while its /metrics is not up)."""
    try:
        m = worker.metrics()
    except OSError:
        return 0.0
    return sum(v for k, v in m.items() if k.startswith("syncpipe_streams_ops_applied_total{"))


async def wait_until(predicate: Callable[[], bool], limit_s: float, every_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"no progress within {limit_s}s")
        await asyncio.sleep(every_s)


def bench_ops(n: int, entities: int, prefix: str = "op") -> list[dict[str, Any]]:
    """``n`` upserts by 8 clients over ``entities`` entities, in HLC order."""
    now = int(time.time() * 1000)
    return [
        op_record(
            op_id=f"{prefix}-{i}",
            client_id=f"c{i % 8}",
            entity_id=f"e{i % entities}",
            hlc=hlc(now + i, f"c{i % 8}"),
            fields={"title": f"t{i}", "n": i},
        )
        for i in range(n)
    ]


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        times = psutil.Process(pid).cpu_times()
        out[name] = times.user + times.system
    return out


async def measure_apply(
    count: Callable[[], float], target: float, pids: dict[str, int], limit_s: float = 600
) -> ApplyResult:
    """Time ``count()`` from its first increase until it reaches ``target``."""
    start_count = count()
    await wait_until(lambda: count() > start_count, 120, 0.01)
    cpu_before = cpu_seconds(pids)
    started, first = time.perf_counter(), count()
    await wait_until(lambda: count() >= target, limit_s, 0.1)
    elapsed = time.perf_counter() - started
    cpu = {k: (v - cpu_before[k]) / elapsed for k, v in cpu_seconds(pids).items()}
    return ApplyResult(int(count() - first), elapsed, cpu)


async def run_once(n: int, entities: int) -> ApplyResult:
    with tempfile.TemporaryDirectory() as tmp_dir, redis_url(Path(tmp_dir)) as url:
        tmp = Path(tmp_dir)
        broker = Broker(tmp / "broker")
        broker.start()
        try:
            topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
            await ensure_topics(broker.bootstrap, topics, partitions=4)
            await produce_ops(broker.bootstrap, topics.ops, bench_ops(n, entities))
            env = {
                "SYNCPIPE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "SYNCPIPE_REDIS_URL": url,
                "SYNCPIPE_REDIS_PREFIX": f"{topics.prefix}:",
                "SYNCPIPE_TOPIC_PREFIX": topics.prefix,
            }
            worker = Worker(env, tmp / "worker.log")
            worker.start()
            try:
                assert worker.proc is not None
                assert broker.proc is not None
                pids = {"worker": worker.proc.pid, "broker": broker.proc.pid}
                return await measure_apply(lambda: applied(worker), n, pids)
            finally:
                worker.stop()
        finally:
            broker.stop()


async def main(n: int, entities: int, repeat: int) -> None:
    rates = []
    for _ in range(repeat):
        result = await run_once(n, entities)
        print(f"{result.line()} (1 worker, 4 partitions, {entities} entities)", flush=True)
        rates.append(result.ops_per_s)
    verdict = "meets" if max(rates) >= TARGET_OPS_PER_S else "MISSES"
    span = f"{min(rates):,.0f}-{max(rates):,.0f}" if len(rates) > 1 else f"{rates[0]:,.0f}"
    print(f"streams apply {span} ops/s per worker: {verdict} the {TARGET_OPS_PER_S:,} target")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="ops to preload (20,000)")
    parser.add_argument("--entities", type=int, default=2_000, help="distinct entities (2,000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on fresh processes")
    args = parser.parse_args()
    if args.ops < 1 or args.entities < 1 or args.repeat < 1:
        parser.error("--ops, --entities and --repeat must be at least 1")
    asyncio.run(main(args.ops, args.entities, args.repeat))
