"""Streams apply throughput through real processes: broker, Redis, one worker.

Preloads N ops on the ops topic, starts one ``python -m streams`` worker and measures
ops reconciled per second from its ``syncpipe_streams_ops_applied_total`` counter (first
op applied → last). Usage: ``uv run python perf/bench_streams.py [--ops N]``.
Needs ``redis-server`` on PATH (or SYNCPIPE_REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.topics import Topics
from streams.provision import ensure_topics
from tests.redis_server import redis_url
from tests.streams.helpers import Broker, Worker, hlc, op_record, produce_ops


def applied(worker: Worker) -> float:
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


async def main(n: int, entities: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_dir, redis_url(Path(tmp_dir)) as url:
        tmp = Path(tmp_dir)
        broker = Broker(tmp / "broker")
        broker.start()
        try:
            topics = Topics(f"bench{uuid.uuid4().hex[:6]}.")
            await ensure_topics(broker.bootstrap, topics, partitions=4)
            now = int(time.time() * 1000)
            ops = [
                op_record(
                    op_id=f"op-{i}",
                    client_id=f"c{i % 8}",
                    entity_id=f"e{i % entities}",
                    hlc=hlc(now + i, f"c{i % 8}"),
                    fields={"title": f"t{i}", "n": i},
                )
                for i in range(n)
            ]
            await produce_ops(broker.bootstrap, topics.ops, ops)
            env = {
                "SYNCPIPE_KAFKA_BOOTSTRAP": broker.bootstrap,
                "SYNCPIPE_REDIS_URL": url,
                "SYNCPIPE_REDIS_PREFIX": f"{topics.prefix}:",
                "SYNCPIPE_TOPIC_PREFIX": topics.prefix,
            }
            worker = Worker(env, tmp / "worker.log")
            worker.start()
            try:
                await wait_until(lambda: applied(worker) >= 1, 120, 0.01)
                started, first = time.perf_counter(), applied(worker)
                await wait_until(lambda: applied(worker) >= n, 600, 0.05)
                elapsed = time.perf_counter() - started
                done = applied(worker) - first
                print(
                    f"streams apply: {done:.0f} ops in {elapsed:.2f}s = "
                    f"{done / elapsed:,.0f} ops/s (1 worker, 4 partitions, {entities} entities)"
                )
            finally:
                worker.stop()
        finally:
            broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=20_000)
    parser.add_argument("--entities", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(main(args.ops, args.entities))
