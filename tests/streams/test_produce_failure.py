"""An output record the log refuses for good ends the worker at once and commits nothing
(``streams/outputs.py``): the op that produced it stays uncommitted, to be reprocessed on
restart exactly as after ``kill -9``, instead of being acknowledged with its state lost."""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from schemas.topics import Topics
from streams.outputs import FATAL_EXIT_CODE
from streams.provision import ensure_topics, group_id
from tests.streams.conftest import PARTITIONS, Pipeline
from tests.streams.helpers import TopicReader, Worker, hlc, key_of, op_record

ENTITY_LIMIT = 2048  # bytes per record batch on the entities topic of this test


async def _tiny_entities_topics(pipeline: Pipeline) -> Topics:
    """Topics of their own, whose ``entities`` refuses record batches over the limit."""
    topics = Topics(f"{pipeline.topics.prefix}tiny.")
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.bootstrap)
    await admin.start()
    try:
        configs = {"cleanup.policy": "compact", "max.message.bytes": str(ENTITY_LIMIT)}
        await admin.create_topics([NewTopic(topics.entities, PARTITIONS, 1, topic_configs=configs)])
    finally:
        await admin.close()
    await ensure_topics(pipeline.bootstrap, topics, partitions=PARTITIONS)
    return topics


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    meta = offsets.get(tp)
    return -1 if meta is None else meta.offset


async def test_a_refused_output_ends_the_worker_without_committing_its_op(
    pipeline: Pipeline,
) -> None:
    topics = await _tiny_entities_topics(pipeline)
    worker = Worker(
        {**pipeline.env(), "SYNCPIPE_TOPIC_PREFIX": topics.prefix},
        pipeline.tmp / "worker-tiny.log",
    )
    pipeline.workers.append(worker)
    worker.start()
    now = int(time.time() * 1000)
    small = op_record(
        op_id="small", client_id="c1", entity_id="e1", hlc=hlc(now, "c1"), fields={"title": "ok"}
    )
    big = op_record(
        op_id="big",
        client_id="c1",
        entity_id="e2",
        hlc=hlc(now + 1, "c1"),
        fields={"title": "x" * (2 * ENTITY_LIMIT)},  # its state cannot fit one batch
    )
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
    await producer.start()
    try:
        async with TopicReader(pipeline.bootstrap, topics.receipts) as receipts:
            first = await producer.send_and_wait(topics.ops, orjson.dumps(small), key=key_of(small))
            await receipts.wait_for(lambda rs: len(rs) >= 1, 60, "the small op's receipt")
        await asyncio.sleep(1.5)  # a few commit intervals: the small op's offset is committed
        meta = await producer.send_and_wait(topics.ops, orjson.dumps(big), key=key_of(big))
    finally:
        await producer.stop()

    assert worker.proc is not None
    code = await asyncio.to_thread(worker.proc.wait, 60)
    assert code == FATAL_EXIT_CODE, worker.log()[-3000:]
    assert "exiting without committing" in worker.log()
    group = group_id(topics, pipeline.settings().app_id)
    tp = TopicPartition(topics.ops, meta.partition)
    assert await _committed(pipeline.bootstrap, group, tp) <= meta.offset  # big is not done
    done = TopicPartition(topics.ops, first.partition)
    assert await _committed(pipeline.bootstrap, group, done) > first.offset  # commits ran
