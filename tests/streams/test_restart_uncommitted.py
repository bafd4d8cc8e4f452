"""A worker killed before it ever committed: its successor starts with no committed offsets."""

from __future__ import annotations

from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from tests.streams.conftest import Pipeline
from tests.streams.helpers import TopicReader, key_of
from tests.streams.test_convergence import client_ops, wait_converged


async def kill_before_first_commit(
    pipeline: Pipeline, producer: AIOKafkaProducer, ops: list[Any]
) -> None:
    """A worker applies ``ops`` and is killed before it ever commits an offset: its group has
    no committed offsets and its changelog holds what it wrote (a table to recover)."""
    first = pipeline.worker(start=False)
    first.env["SYNCPIPE_STREAMS_COMMIT_INTERVAL_S"] = "60"  # never commits before the kill
    first.start()
    for op in ops:
        await producer.send(pipeline.topics.ops, key=key_of(op), value=orjson.dumps(op))
    await producer.flush()
    async with TopicReader(pipeline.bootstrap, pipeline.topics.receipts) as receipts:
        await receipts.wait_for(lambda rs: len(rs) >= len(ops), 60, "receipts of its ops")
    first.kill9()


async def test_successor_of_a_worker_killed_before_its_first_commit_applies_everything(
    pipeline: Pipeline,
) -> None:
    t = pipeline.topics
    early = client_ops("c1", 0, 120, 12, seed=11)
    late = client_ops("c2", 5_000, 120, 12, seed=12)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
    await producer.start()
    try:
        await kill_before_first_commit(pipeline, producer, early)
        for op in late:
            await producer.send(t.ops, key=key_of(op), value=orjson.dumps(op))
        await producer.flush()
    finally:
        await producer.stop()
    second = pipeline.worker()
    await wait_converged(pipeline, {op["op_id"] for op in early + late}, 90)
    assert second.alive()
