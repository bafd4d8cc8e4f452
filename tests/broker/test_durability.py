"""kill -9 under acks=all load loses no acknowledged record; restart keeps topic configs."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.timeout(120)


async def _drain(bootstrap: str, topic: str, partitions: int = 1) -> list:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", check_crcs=True)
    await c.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        end = await c.end_offsets(tps)
        out: list = []
        async with asyncio.timeout(30):
            while [tp for tp in tps if await c.position(tp) < end[tp]]:
                batch = await c.getmany(timeout_ms=500)
                for msgs in batch.values():
                    out.extend(msgs)
        return out
    finally:
        await c.stop()


async def test_kill9_under_acks_all_load_keeps_every_acknowledged_record(broker_factory) -> None:
    b = broker_factory(env={"SYNCPIPE_BROKER_DEFAULT_PARTITIONS": "3"})
    acked: list[bytes] = []
    p = AIOKafkaProducer(
        bootstrap_servers=b.bootstrap,
        acks="all",
        linger_ms=2,
        request_timeout_ms=3000,
        retry_backoff_ms=50,
    )
    await p.start()

    async def one(i: int) -> None:
        value = f"rec-{i}".encode()
        with contextlib.suppress(Exception):
            await (await p.send("crash", value, key=str(i % 17).encode()))
            acked.append(value)

    tasks: list[asyncio.Task[None]] = []
    i = 0
    async with asyncio.timeout(30):
        while len(acked) < 10_000:
            tasks.extend(asyncio.create_task(one(i + j)) for j in range(200))
            i += 200
            await asyncio.sleep(0.01)
    b.kill9()  # mid-load: hundreds of sends are still in flight
    snapshot = list(acked)
    await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(p.stop(), 10)

    b.start()
    got = Counter(m.value for m in await _drain(b.bootstrap, "crash", 3))
    assert snapshot, "nothing was acknowledged before the kill"
    missing = [v for v in snapshot if got[v] == 0]
    dupes = [v for v in snapshot if got[v] > 1]
    assert not missing, f"{len(missing)} acknowledged records lost, e.g. {missing[:3]}"
    assert not dupes, f"{len(dupes)} acknowledged records duplicated"


async def test_torn_write_is_truncated_on_restart_and_never_served(broker) -> None:
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await p.start()
    for i in range(20):
        await p.send_and_wait("torn", f"ok-{i}".encode())
    await p.stop()
    broker.kill9()
    seg = sorted((broker.data_dir / "topics" / "torn" / "0").glob("*.log"))[-1]
    data = seg.read_bytes()
    seg.write_bytes(data + data[-40:])  # half of a copy of the last batch: a write cut short
    broker.start()
    msgs = await _drain(broker.bootstrap, "torn")
    assert [m.value for m in msgs] == [f"ok-{i}".encode() for i in range(20)]
    assert "truncating torn log tail" in broker.log()


async def test_restart_keeps_topic_configs_partitions_and_data(broker) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    await admin.create_topics(
        [
            NewTopic(
                "kept", 2, 1, topic_configs={"cleanup.policy": "compact", "retention.ms": "1234"}
            )
        ]
    )
    await admin.close()
    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await p.start()
    await p.send_and_wait("kept", b"v", key=b"k", partition=1)
    await p.stop()

    broker.restart()

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        res = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kept")])
        configs = {c[0]: c[1] for c in res[0].resources[0][4]}
        assert configs["cleanup.policy"] == "compact"
        assert configs["retention.ms"] == "1234"
        desc = await admin.describe_topics(["kept"])
        assert len(desc[0]["partitions"]) == 2
    finally:
        await admin.close()
    msgs = await _drain(broker.bootstrap, "kept", 2)
    assert [(m.partition, m.key) for m in msgs] == [(1, b"k")]
