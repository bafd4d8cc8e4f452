"""Consumer groups with aiokafka: rebalancing as members join and leave, commit, resume,
and committed offsets surviving a broker restart."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.timeout(120)

TOPIC = "grp"
PARTITIONS = 6


class Member:
    def __init__(self, bootstrap: str, name: str) -> None:
        self.name = name
        self.consumer = AIOKafkaConsumer(
            TOPIC,
            bootstrap_servers=bootstrap,
            group_id="g3",
            client_id=name,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            heartbeat_interval_ms=100,
            session_timeout_ms=3000,
        )
        self.values: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self.task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for msgs in batch.values():
                self.values.extend(m.value for m in msgs)
            if batch:
                await self.consumer.commit()

    def assigned(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    async def stop(self) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.consumer.stop()


async def _wait_balanced(members: list[Member], within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        sets = [m.assigned() for m in members]
        union = set().union(*sets)
        if (
            union == set(range(PARTITIONS))
            and sum(len(s) for s in sets) == PARTITIONS
            and all(sets)
        ):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not balanced: {[(m.name, m.assigned()) for m in members]}")


async def _produce(bootstrap: str, start: int, n: int) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await p.start()
    try:
        for i in range(start, start + n):
            await p.send(TOPIC, f"m{i}".encode(), partition=i % PARTITIONS)
        await p.flush()
    finally:
        await p.stop()


async def _wait_consumed(members: list[Member], expected: set[bytes], within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if expected <= {v for m in members for v in m.values}:
            return
        await asyncio.sleep(0.05)
    seen = {v for m in members for v in m.values}
    raise AssertionError(f"{len(expected - seen)} records never consumed")


async def _create_topic(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
    finally:
        await admin.close()


async def test_three_consumers_rebalance_commit_and_resume_across_restart(broker) -> None:
    await _create_topic(broker.bootstrap)
    await _produce(broker.bootstrap, 0, 120)

    a, b, c = (Member(broker.bootstrap, n) for n in ("a", "b", "c"))
    await a.start()
    await _wait_balanced([a])
    await b.start()
    await _wait_balanced([a, b])
    await c.start()
    await _wait_balanced([a, b, c])
    assert all(len(m.assigned()) == 2 for m in (a, b, c))
    await _produce(broker.bootstrap, 120, 120)
    await _wait_consumed([a, b, c], {f"m{i}".encode() for i in range(240)})

    await b.stop()  # leaves the group: a and c take over its partitions
    await _wait_balanced([a, c])
    await _produce(broker.bootstrap, 240, 60)
    await _wait_consumed([a, c], {f"m{i}".encode() for i in range(240, 300)})
    await a.stop()
    await c.stop()

    broker.restart()

    probe = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="g3")
    await probe.start()
    try:
        committed = {p: await probe.committed(TopicPartition(TOPIC, p)) for p in range(PARTITIONS)}
    finally:
        await probe.stop()
    assert committed == dict.fromkeys(range(PARTITIONS), 50)

    await _produce(broker.bootstrap, 300, 12)
    d = Member(broker.bootstrap, "d")
    await d.start()
    try:
        await _wait_consumed([d], {f"m{i}".encode() for i in range(300, 312)})
        assert sorted(d.values) == sorted(f"m{i}".encode() for i in range(300, 312)), (
            "resumed from committed offsets, nothing replayed"
        )
    finally:
        await d.stop()


async def test_dead_member_is_expired_after_session_timeout(broker) -> None:
    await _create_topic(broker.bootstrap)
    await _produce(broker.bootstrap, 0, 6)
    a, b = Member(broker.bootstrap, "a"), Member(broker.bootstrap, "b")
    await a.start()
    await b.start()
    await _wait_balanced([a, b])
    # b stops heartbeating without leaving (as if its process hung)
    assert b.task is not None
    b.task.cancel()
    b.consumer._coordinator._heartbeat_task.cancel()
    await _wait_balanced([a], within_s=20)
    await a.stop()
    with contextlib.suppress(Exception):
        await b.consumer.stop()
