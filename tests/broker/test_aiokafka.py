"""aiokafka as the oracle: produce with every acks level, consume, offsets, long polling."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.timeout(60)


async def _consume(bootstrap: str, topic: str, n: int, **kw) -> list:
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **kw)
    await c.start()
    out: list = []
    try:
        async with asyncio.timeout(20):
            while len(out) < n:
                batch = await c.getmany(timeout_ms=500)
                for msgs in batch.values():
                    out.extend(msgs)
    finally:
        await c.stop()
    return out


@pytest.mark.parametrize("acks", [0, 1, "all"], ids=["acks0", "acks1", "acksall"])
async def test_aiokafka_produce_then_consume_in_order(broker, acks) -> None:
    topic = f"orders-{acks}"
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks=acks, linger_ms=5)
    await p.start()
    try:
        futs = [await p.send(topic, f"v{i}".encode(), key=f"k{i % 7}".encode()) for i in range(500)]
        await p.flush()
        metas = await asyncio.gather(*futs)
    finally:
        await p.stop()
    if acks != 0:
        assert [m.offset for m in metas] == list(range(500))
    msgs = await _consume(broker.bootstrap, topic, 500)
    assert [m.value for m in msgs] == [f"v{i}".encode() for i in range(500)]
    assert [m.offset for m in msgs] == list(range(500))
    assert msgs[3].key == b"k3"


async def test_aiokafka_list_offsets_earliest_latest_and_by_time(broker) -> None:
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await p.start()
    t0 = int(time.time() * 1000)
    for i in range(10):
        await p.send_and_wait("lo", b"x", timestamp_ms=t0 + i * 1000)
    await p.stop()
    c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap)
    await c.start()
    try:
        tp = TopicPartition("lo", 0)
        assert await c.beginning_offsets([tp]) == {tp: 0}
        assert await c.end_offsets([tp]) == {tp: 10}
        found = await c.offsets_for_times({tp: t0 + 4500})
        assert found[tp].offset == 5
        assert found[tp].timestamp == t0 + 5000
        none = await c.offsets_for_times({tp: t0 + 60_000})
        assert none[tp] is None
    finally:
        await c.stop()


async def test_aiokafka_fetch_long_poll_wakes_on_new_data(broker) -> None:
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await p.start()
    await p.send_and_wait("wake", b"first")
    c = AIOKafkaConsumer(
        "wake",
        bootstrap_servers=broker.bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10_000,
    )
    await c.start()
    try:
        assert (await asyncio.wait_for(c.getone(), 10)).value == b"first"
        waiter = asyncio.create_task(c.getone())
        await asyncio.sleep(0.3)  # let the consumer park a long-poll fetch
        sent = time.monotonic()
        await p.send_and_wait("wake", b"second")
        msg = await asyncio.wait_for(waiter, 5)
        assert msg.value == b"second"
        assert time.monotonic() - sent < 2.0, "fetch was not woken by the append"
    finally:
        await c.stop()
        await p.stop()


async def test_aiokafka_large_records_respect_fetch_limits(broker) -> None:
    p = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, acks="all", max_request_size=4 * 1024 * 1024
    )
    await p.start()
    blob = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(4):
        await p.send_and_wait("big", blob)
    await p.stop()
    msgs = await _consume(
        broker.bootstrap, "big", 4, max_partition_fetch_bytes=64 * 1024, fetch_max_bytes=64 * 1024
    )
    assert len(msgs) == 4
    assert all(m.value == blob for m in msgs)


async def test_aiokafka_admin_creates_lists_and_deletes_topics(broker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    "made",
                    num_partitions=3,
                    replication_factor=1,
                    topic_configs={"cleanup.policy": "compact"},
                )
            ]
        )
        assert "made" in await admin.list_topics()
        desc = await admin.describe_topics(["made"])
        assert len(desc[0]["partitions"]) == 3
        await admin.delete_topics(["made"])
        assert "made" not in await admin.list_topics()
    finally:
        await admin.close()


async def test_aiokafka_multi_partition_keys_land_consistently(broker_factory) -> None:
    b = broker_factory(env={"SYNCPIPE_BROKER_DEFAULT_PARTITIONS": "4"})
    p = AIOKafkaProducer(bootstrap_servers=b.bootstrap, acks="all")
    await p.start()
    parts: dict[bytes, set[int]] = {}
    for i in range(200):
        key = f"key{i % 10}".encode()
        md = await (await p.send("multi", b"v", key=key))
        parts.setdefault(key, set()).add(md.partition)
    await p.stop()
    assert all(len(s) == 1 for s in parts.values())
    assert len({next(iter(s)) for s in parts.values()}) > 1
    msgs = await _consume(b.bootstrap, "multi", 200)
    assert len(msgs) == 200


@pytest.mark.parametrize("policy", ["group", "always", "interval", "never"])
async def test_every_fsync_policy_serves_produce_and_fetch(broker_factory, policy: str) -> None:
    b = broker_factory(
        env={"SYNCPIPE_BROKER_FSYNC": policy, "SYNCPIPE_BROKER_FSYNC_INTERVAL_MS": "50"}
    )
    p = AIOKafkaProducer(bootstrap_servers=b.bootstrap, acks="all")
    await p.start()
    try:
        for i in range(50):
            await p.send("pol", f"{policy}{i}".encode())
        await p.flush()
    finally:
        await p.stop()
    msgs = await _consume(b.bootstrap, "pol", 50)
    assert [m.value for m in msgs] == [f"{policy}{i}".encode() for i in range(50)]


async def test_log_append_time_topic_stamps_broker_time(broker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic("stamped", 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})]
        )
    finally:
        await admin.close()
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await p.start()
    before = int(time.time() * 1000)
    try:
        md = await p.send_and_wait("stamped", b"x", timestamp_ms=1_000)
    finally:
        await p.stop()
    assert md.timestamp >= before, "the produce response carries the append time"
    (msg,) = await _consume(broker.bootstrap, "stamped", 1)
    assert msg.timestamp_type == 1
    assert msg.timestamp >= before
