"""``reconcile`` agent: ops → LWW table → entities, conflicts, receipts (or ops.dlq)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from streams.processing import Reconciler, Rejection, decode, dlq_record

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)


def register(ctx: StreamsApp) -> None:
    reconciler = Reconciler()
    table, metrics, positions = ctx.table, ctx.metrics, ctx.positions
    ops_topic = ctx.topics.ops

    @ctx.faust.agent(ctx.ops, name="reconcile")
    async def reconcile(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            op = decode(message.key, message.value)
            if isinstance(op, Rejection):
                log.warning(
                    "op rejected to dlq",
                    extra={
                        "topic": message.topic,
                        "partition": message.partition,
                        "offset": message.offset,
                        "reason": op.reason,
                    },
                )
                value = dlq_record(
                    op,
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                )
                await ctx.dlq.send(key=message.key, value=value)
                metrics.dlq.labels(op.kind).inc()
            else:
                out = reconciler.reconcile(op, table.get)
                if out.stored is not None:
                    table[out.key] = out.stored
                if out.state is not None:
                    await ctx.entities.send(key=out.key, value=out.state)
                    metrics.states.inc()
                    metrics.apply_latency.observe(max(0.0, time.time() - out.received_at_ms / 1000))
                if out.conflict is not None:
                    await ctx.conflicts.send(key=out.key, value=out.conflict)
                    metrics.conflicts.inc()
                await ctx.receipts.send(key=out.receipt_key, value=out.receipt)
                metrics.ops_applied.labels(out.status).inc()
            positions[(ops_topic, message.partition)] = message.offset + 1
