"""Fetch long-poll on the wire: a parked Fetch returns as soon as another client's
produce lands on any partition it asked for, across partitions and topics."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.codec.primitives import Reader, Writer
from tests.broker.wire import Wire

pytestmark = pytest.mark.timeout(60)

MAX_WAIT_MS = 20_000
"""Far longer than any test waits: a fetch that returns early was woken, not timed out."""


def _fetch_v11(wait_ms: int, wanted: dict[str, list[tuple[int, int]]]) -> bytes:
    """Fetch v11 body for {topic: [(partition, offset)]}, min_bytes 1."""
    w = Writer().int32(-1).int32(wait_ms).int32(1).int32(1 << 20).int8(0)
    w.int32(0).int32(-1)  # no fetch session
    w.int32(len(wanted))
    for topic, parts in wanted.items():
        w.string(topic).int32(len(parts))
        for partition, offset in parts:
            w.int32(partition).int32(-1).int64(offset).int64(-1).int32(1 << 20)
    return w.int32(0).string("").getvalue()


def _records_by_partition(r: Reader) -> dict[tuple[str, int], int]:
    """Bytes of record data per (topic, partition) in a Fetch v11 response."""
    r.int32()  # throttle
    assert r.int16() == 0  # error
    r.int32()  # session id
    out: dict[tuple[str, int], int] = {}
    for _ in range(r.int32()):
        topic = r.string()
        for _ in range(r.int32()):
            partition = r.int32()
            assert r.int16() == 0
            r.int64()  # high watermark
            r.int64()  # last stable offset
            r.int64()  # log start offset
            assert r.int32() == -1  # aborted transactions
            r.int32()  # preferred read replica
            data = r.nullable_bytes()
            out[(topic, partition)] = len(data) if data is not None else 0
    return out


async def _create(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, partitions, 1) for name, partitions in topics.items()]
        )
    finally:
        await admin.close()


@pytest.mark.parametrize(
    ("layout", "target"),
    [
        ({"one": 4}, ("one", 3)),
        ({"ops": 4, "changelog": 4}, ("changelog", 2)),
        ({"ops": 4, "changelog": 4}, ("ops", 0)),
    ],
    ids=["last-partition", "second-topic", "first-topic"],
)
@pytest.mark.parametrize("acks", [0, 1, "all"], ids=["acks0", "acks1", "acksall"])
async def test_parked_fetch_returns_when_another_client_produces(
    broker, layout: dict[str, int], target: tuple[str, int], acks: int | str
) -> None:
    await _create(broker.bootstrap, layout)
    wanted = {topic: [(p, 0) for p in range(n)] for topic, n in layout.items()}
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks=acks)
    await producer.start()
    w = Wire(broker.port)
    try:
        for _ in range(3):  # the same connection parks again after each answer
            w.send(1, 11, _fetch_v11(MAX_WAIT_MS, wanted))
            answer = asyncio.create_task(asyncio.to_thread(w.recv))
            await asyncio.sleep(0.3)  # the fetch is parked: nothing to read yet
            assert not answer.done(), "fetch answered with no data and no timeout"
            sent = time.monotonic()
            topic, partition = target
            await producer.send_and_wait(topic, b"wake", partition=partition)
            _, r = await asyncio.wait_for(answer, 10)
            waited = time.monotonic() - sent
            assert waited < 1.0, f"fetch returned {waited:.2f} s after the produce"
            got = _records_by_partition(r)
            assert got[target] > 0
            assert all(n == 0 for tp, n in got.items() if tp != target)
            wanted[topic] = [(p, o + 1 if p == partition else o) for p, o in wanted[topic]]
    finally:
        w.close()
        await producer.stop()


async def test_parked_fetch_still_honours_max_wait(broker) -> None:
    await _create(broker.bootstrap, {"quiet": 2})
    w = Wire(broker.port)
    try:
        started = time.monotonic()
        w.send(1, 11, _fetch_v11(400, {"quiet": [(0, 0), (1, 0)]}))
        _, r = await asyncio.wait_for(asyncio.to_thread(w.recv), 10)
        waited = time.monotonic() - started
        assert 0.35 <= waited < 3.0
        assert _records_by_partition(r) == {("quiet", 0): 0, ("quiet", 1): 0}
    finally:
        w.close()
