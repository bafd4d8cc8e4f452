"""``materialize`` agent: entities topic → Redis read model, batched and version-guarded."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from streams.readmodel import ReadModelUnavailableError, ReadModelWriter

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)

_RETRY_S = 0.5


def register(ctx: StreamsApp) -> None:
    settings, metrics, positions = ctx.settings, ctx.metrics, ctx.positions
    entities_topic = ctx.topics.entities
    within = max(settings.materialize_linger_ms, 1) / 1000

    @ctx.faust.agent(ctx.entities, name="materialize")
    async def materialize(stream: Any) -> None:
        client = aioredis.from_url(ctx.shared.redis_url or "")
        writer = ReadModelWriter(client, ctx.shared.redis_prefix)
        try:
            async for batch in stream.take_events(settings.materialize_batch_size, within):
                values = [event.value for event in batch if event.value is not None]
                started = time.perf_counter()
                written, offered = await _write(writer, values)
                metrics.materialize_batch.observe(time.perf_counter() - started)
                metrics.materialize_writes.labels("written").inc(written)
                metrics.materialize_writes.labels("not_newer").inc(offered - written)
                for event in batch:
                    message = event.message
                    positions[(entities_topic, message.partition)] = message.offset + 1
        finally:
            await client.aclose()


async def _write(writer: ReadModelWriter, values: list[bytes]) -> tuple[int, int]:
    """Retry until Redis takes the batch: the agent must not skip states."""
    while True:
        try:
            return await writer.upsert(values)
        except ReadModelUnavailableError as exc:
            log.warning("read model unavailable, retrying", extra={"error": str(exc)})
            await asyncio.sleep(_RETRY_S)
