"""Ops arriving while the worker works off a backlog are not held back by fetch long-polls.

aiokafka keeps one fetch in flight per broker and leaves out of it the partitions whose
records still wait to be consumed. While the worker chews on a big batch, that fetch asks
for nothing but idle partitions (Faust's leader topic) and parks for its whole max wait;
with Faust's hard-coded 1.5 s the worker then stalled, mostly idle, with every op ~1.5 s
late, and stayed so long after the backlog was gone. The worker bounds that wait
(``SYNCPIPE_STREAMS_FETCH_MAX_WAIT_MS``), so ops stay prompt during and after the backlog.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.streams.conftest import Pipeline
from tests.streams.helpers import Worker, hlc, key_of, op_record, produce_ops, wait_until

pytestmark = pytest.mark.timeout(180)

BACKLOG = 20_000
RATE_OPS_PER_S = 500
PER_SEND = 10
TRICKLE_S = 10.0


def _op(name: str, n: int) -> dict[str, Any]:
    wall = int(time.time() * 1000)
    return op_record(
        op_id=f"{name}-{n}",
        client_id=f"c{n % 16}",
        entity_id=f"{name}-{n}",
        hlc=hlc(wall, f"c{n % 16}"),
        fields={"title": f"{name} {n}"},
    )


async def test_ops_stay_prompt_while_and_after_a_backlog_is_worked_off(
    pipeline: Pipeline,
) -> None:
    worker = Worker(pipeline.env(), pipeline.tmp / "worker-latency.log")
    pipeline.workers.append(worker)
    worker.start()
    seen: dict[bytes, float] = {}
    consumer = AIOKafkaConsumer(
        pipeline.topics.entities,
        bootstrap_servers=pipeline.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=10)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    seen.setdefault(record.key, now)

    watcher = asyncio.create_task(watch())
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        first = _op("warm", 0)
        await produce_ops(pipeline.bootstrap, pipeline.topics.ops, [first])

        async def warmed() -> bool:
            return key_of(first) in seen

        await wait_until(warmed, 90, "the worker to apply a first op")

        await produce_ops(
            pipeline.bootstrap, pipeline.topics.ops, (_op("bulk", n) for n in range(BACKLOG))
        )
        sent: dict[bytes, float] = {}
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < TRICKLE_S:
            ops = [_op("live", n + i) for i in range(PER_SEND)]
            n += PER_SEND
            at = time.monotonic()
            futures = [
                await producer.send(pipeline.topics.ops, orjson.dumps(op), key=key_of(op))
                for op in ops
            ]
            await asyncio.gather(*futures)
            for op in ops:
                sent[key_of(op)] = at
            await asyncio.sleep(max(0.0, started + (n / RATE_OPS_PER_S) - time.monotonic()))

        async def all_seen() -> bool:
            return all(k in seen for k in sent)

        await wait_until(all_seen, 60, "every live op's entity state")
    finally:
        stop.set()
        await watcher
        await consumer.stop()
        await producer.stop()
    assert worker.alive(), worker.log()[-3000:]

    # Only ops sent once the backlog's last state was out: the backlog itself may
    # rightly delay the ops queued behind it.
    bulk = [key_of(_op("bulk", n)) for n in range(BACKLOG)]
    assert all(k in seen for k in bulk), "backlog states missing"
    cutoff = max(seen[k] for k in bulk)
    late = sorted(seen[k] - t for k, t in sent.items() if t >= cutoff)
    assert len(late) >= RATE_OPS_PER_S, (
        f"the backlog took {cutoff - started:.1f} s of the {TRICKLE_S:.0f} s trickle"
    )
    p50 = statistics.median(late)
    p95 = late[int(len(late) * 0.95)]
    assert p50 < 0.25, f"live ops p50 {p50 * 1000:.0f} ms after the backlog (p95 {p95 * 1000:.0f})"
    assert p95 < 0.6, f"live ops p95 {p95 * 1000:.0f} ms after the backlog (p50 {p50 * 1000:.0f})"
