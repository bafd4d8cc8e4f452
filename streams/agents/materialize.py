"""``materialize``: entities topic → Redis read model, batched and version-guarded.

It runs inside the worker as a task with its own aiokafka consumer in the consumer group
``{group}-materialize`` rather than as a Faust agent: Faust's per-event machinery (an
event, a task pair and a queue hop per record) cost more than the write itself, and the
read model needs none of it (no table, no outputs). A batch is whatever one ``getmany``
returns (up to ``materialize_batch_size`` states, waiting at most
``materialize_linger_ms``); its offsets are committed only after Redis took it, so a
crash re-offers states, which the newer-version-only upsert ignores.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams.readmodel import ReadModelUnavailableError, ReadModelWriter

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)

_RETRY_S = 0.5


def register(ctx: StreamsApp) -> None:
    @ctx.faust.task
    async def materialize() -> None:
        while True:
            try:
                await _run(ctx)
            except (KafkaError, OSError) as exc:
                log.warning("materialize consumer failed, restarting", extra={"error": repr(exc)})
                await asyncio.sleep(_RETRY_S)


def consumer_group(ctx: StreamsApp) -> str:
    return f"{ctx.faust.conf.id}-materialize"


async def _run(ctx: StreamsApp) -> None:
    settings, metrics = ctx.settings, ctx.metrics
    consumer = AIOKafkaConsumer(
        ctx.topics.entities,
        bootstrap_servers=ctx.shared.kafka_bootstrap,
        group_id=consumer_group(ctx),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        session_timeout_ms=int(settings.session_timeout_s * 1000),
        heartbeat_interval_ms=int(min(3.0, settings.session_timeout_s / 3) * 1000),
    )
    client = aioredis.from_url(ctx.shared.redis_url or "")
    writer = ReadModelWriter(client, ctx.shared.redis_prefix)
    await consumer.start()
    try:
        committed_at = time.monotonic()
        pending: dict[TopicPartition, int] = {}
        while True:
            batches = await consumer.getmany(
                timeout_ms=max(settings.materialize_linger_ms, 1),
                max_records=settings.materialize_batch_size,
            )
            values = [r.value for records in batches.values() for r in records if r.value]
            if values:
                started = time.perf_counter()
                written, offered = await _write(writer, values)
                metrics.materialize_batch.observe(time.perf_counter() - started)
                metrics.materialize_writes.labels("written").inc(written)
                metrics.materialize_writes.labels("not_newer").inc(offered - written)
            for tp, records in batches.items():
                if records:
                    pending[tp] = records[-1].offset + 1
            _measure_lag(ctx, consumer, batches)
            if pending and time.monotonic() - committed_at >= settings.commit_interval_s:
                await _commit(consumer, pending)
                pending, committed_at = {}, time.monotonic()
    finally:
        try:
            if pending:
                await _commit(consumer, pending)
        finally:
            await consumer.stop()
            await client.aclose()


async def _commit(consumer: Any, offsets: dict[TopicPartition, int]) -> None:
    """Commit written offsets of partitions still assigned (a revoked one is the new
    owner's to re-offer, harmlessly)."""
    assigned = consumer.assignment()
    mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if mine:
        await consumer.commit(mine)


def _measure_lag(ctx: StreamsApp, consumer: Any, batches: dict[TopicPartition, Any]) -> None:
    positions = ctx.positions
    for tp, records in batches.items():
        if records:
            positions[(tp.topic, tp.partition)] = records[-1].offset + 1
    lag = 0
    for tp in consumer.assignment():
        highwater = consumer.highwater(tp)
        position = positions.get((tp.topic, tp.partition))
        if highwater is not None and position is not None:
            lag += max(0, highwater - position)
    ctx.metrics.consumer_lag.labels("entities").set(lag)


async def _write(writer: ReadModelWriter, values: list[bytes]) -> tuple[int, int]:
    """Retry until Redis takes the batch: the agent must not skip states."""
    while True:
        try:
            return await writer.upsert(values)
        except ReadModelUnavailableError as exc:
            log.warning("read model unavailable, retrying", extra={"error": str(exc)})
            await asyncio.sleep(_RETRY_S)
