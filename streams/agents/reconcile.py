"""``reconcile`` agent: ops → LWW table → entities, conflicts, receipts (or ops.dlq).

Ops are taken in batches (up to ``reconcile_batch_size``, waiting at most
``reconcile_linger_ms``). Each op is reconciled in log order exactly as one at a time; the
batch's outputs are produced together (:class:`streams.outputs.Outputs`), and the table
changelog gets the last record of each entity the batch changed. Faust acks the batch's
events only after this returns, and flushes the producer before it commits their
offsets, so a crash at any point leaves the batch to be reprocessed (idempotently).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from streams.outputs import Outputs
from streams.processing import Reconciler, Rejection, decode, dlq_record
from streams.table_io import RawTable

if TYPE_CHECKING:
    from streams.app import StreamsApp

log = logging.getLogger(__name__)


def register(ctx: StreamsApp) -> None:
    reconciler = Reconciler()
    metrics, positions, topics = ctx.metrics, ctx.positions, ctx.topics
    settings = ctx.settings
    within = max(settings.reconcile_linger_ms, 1) / 1000
    applied_by_status: dict[str, Any] = {}
    dlq_by_kind: dict[str, Any] = {}

    @ctx.faust.agent(ctx.ops, name="reconcile")
    async def reconcile(stream: Any) -> None:
        producer = ctx.faust.producer
        aio = producer._ensure_producer()
        outputs = Outputs(aio, lambda key, parts: int(aio._partitioner(key, parts, parts)))
        table = RawTable(ctx.table)
        # never the changelog: asking before Faust declares it would auto-create it
        await outputs.prepare(topics.entities, topics.conflicts, topics.receipts, topics.ops_dlq)
        async for events in stream.take_events(settings.reconcile_batch_size, within):
            store = table.store()
            changed: dict[bytes, tuple[int, bytes]] = {}
            for event in events:
                message = event.message
                op = decode(message.key, message.value)
                if isinstance(op, Rejection):
                    _reject(ctx, outputs, message, op)
                    counter = dlq_by_kind.get(op.kind)
                    if counter is None:
                        counter = dlq_by_kind[op.kind] = metrics.dlq.labels(op.kind)
                    counter.inc()
                else:
                    out = reconciler.reconcile(op, store.get)
                    if out.stored is not None:
                        store[out.key] = out.stored
                        changed[out.key] = (message.partition, out.stored)
                    if out.state is not None:
                        outputs.add(topics.entities, out.key, out.state)
                        metrics.states.inc()
                        metrics.apply_latency.observe(
                            max(0.0, time.time() - out.received_at_ms / 1000)
                        )
                    if out.conflict is not None:
                        outputs.add(topics.conflicts, out.key, out.conflict)
                        metrics.conflicts.inc()
                    outputs.add(topics.receipts, out.receipt_key, out.receipt)
                    counter = applied_by_status.get(out.status)
                    if counter is None:
                        counter = applied_by_status[out.status] = metrics.ops_applied.labels(
                            out.status
                        )
                    counter.inc()
                positions[(topics.ops, message.partition)] = message.offset + 1
            for key, (partition, stored) in changed.items():
                outputs.add(table.topic, key, stored, partition=partition)
            await outputs.send()


def _reject(ctx: StreamsApp, outputs: Outputs, message: Any, op: Rejection) -> None:
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
    outputs.add(ctx.topics.ops_dlq, message.key, value)
