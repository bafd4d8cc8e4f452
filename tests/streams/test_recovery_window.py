"""Ops fetched while recovery hands over from the changelog to the ops partitions.

When table recovery ends, Faust pauses the changelog partitions and only later resumes
the ops partitions; in between the worker has no active partition, and a fetch that
completes then hands over every buffered record, ops included, which Faust drops as not
active. A worker with committed offsets seeks back to them right after and reads the ops
again; a worker whose group never committed (its predecessor was killed within its first
commit interval) must also go back, to the start of the log, or those ops are skipped
for good. The window is widened here (``tests.streams.slow_recovery_worker``) so ops
reliably arrive inside it.
"""

from __future__ import annotations

import asyncio
import sys

import orjson
from aiokafka import AIOKafkaProducer

from tests.streams.conftest import Pipeline
from tests.streams.helpers import key_of
from tests.streams.test_convergence import client_ops, wait_converged
from tests.streams.test_restart_uncommitted import kill_before_first_commit


async def test_ops_arriving_while_recovery_completes_are_applied_without_committed_offsets(
    pipeline: Pipeline,
) -> None:
    t = pipeline.topics
    early = client_ops("c1", 0, 40, 8, seed=21)
    late = client_ops("c2", 5_000, 240, 8, seed=22)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
    await producer.start()
    try:
        await kill_before_first_commit(pipeline, producer, early)
        second = pipeline.worker(start=False)
        second.argv = [sys.executable, "-m", "tests.streams.slow_recovery_worker"]
        second.env["SYNCPIPE_TEST_RECOVERY_PAUSE_S"] = "1.5"
        second.start()
        # ops keep arriving from before the successor joins until after it is ready
        for op in late:
            await producer.send(t.ops, key=key_of(op), value=orjson.dumps(op))
            await asyncio.sleep(0.04)
        await producer.flush()
    finally:
        await producer.stop()
    assert "Restoring state from changelog topics" in second.log()
    await wait_converged(pipeline, {op["op_id"] for op in early + late}, 90)
    assert second.alive()
