"""A streams worker killed with SIGKILL under load restarts to exactly the LWW oracle."""

from __future__ import annotations

import asyncio
import random

import orjson
from aiokafka import AIOKafkaProducer

from tests.streams.conftest import Pipeline
from tests.streams.helpers import TopicReader, key_of
from tests.streams.test_convergence import client_ops, wait_converged


async def test_worker_killed_under_load_restarts_to_oracle_and_read_model_never_regresses(
    pipeline: Pipeline,
) -> None:
    t = pipeline.topics
    first = pipeline.worker()
    ops = client_ops("c1", 0, 1500, 30, seed=1) + client_ops("c2", 9_000, 1500, 30, seed=2)
    random.Random(3).shuffle(ops)
    regressions: list[str] = []
    seen: dict[str, int] = {}
    stop = asyncio.Event()

    async def watch_read_model() -> None:
        while not stop.is_set():
            for entity, state in (await pipeline.read_model()).items():
                if state["version"] < seen.get(entity, 0):
                    regressions.append(f"{entity}: {seen[entity]} -> {state['version']}")
                seen[entity] = max(seen.get(entity, 0), state["version"])
            await asyncio.sleep(0.02)

    async def produce_steadily() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(0, len(ops), 50):
                for op in ops[i : i + 50]:
                    await producer.send(t.ops, key=key_of(op), value=orjson.dumps(op))
                await asyncio.sleep(0.04)  # ~1,000 ops/s
            await producer.flush()
        finally:
            await producer.stop()

    watcher = asyncio.create_task(watch_read_model())
    producing = asyncio.create_task(produce_steadily())
    async with TopicReader(pipeline.bootstrap, t.receipts) as receipts:
        await receipts.wait_for(lambda rs: len(rs) >= 800, 60, "800 receipts before the kill")
    first.kill9()
    second = pipeline.worker()
    await producing
    await wait_converged(pipeline, {op["op_id"] for op in ops}, 150)
    stop.set()
    await watcher
    assert second.alive()
    assert regressions == []
