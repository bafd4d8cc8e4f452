"""The Faust app: built by :func:`create_app` from settings, never at import time.

Faust apps are usually module globals; ours is assembled by a factory so tests, replays
and ``syncpipe streams`` each build their own from their own settings. The worker runs
the ``reconcile`` agent (:mod:`streams.agents.reconcile`) over one changelog-backed
table kept in memory (``memory://``): on start it is recovered from its changelog topic,
which is compacted so recovery stays short. The ``materialize`` task
(:mod:`streams.agents.materialize`) writes entity states to the Redis read model.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust

from schemas.settings import SharedSettings
from schemas.topics import Topics
from streams.errors import StreamsError
from streams.metrics import StreamsMetrics
from streams.provision import ensure_topics, group_id

log = logging.getLogger(__name__)

_PRODUCER_BATCH_BYTES = 256 * 1024


@dataclass
class StreamsApp:
    """The Faust app and what its agents share."""

    faust: Any  # faust.App (untyped library)
    settings: Any  # StreamsSettings
    shared: SharedSettings
    topics: Topics
    partitions: int
    metrics: StreamsMetrics
    ops: Any  # faust topic of ops
    entities: Any
    conflicts: Any
    receipts: Any
    dlq: Any
    table: Any  # faust Table: entity key -> EntityRecord JSON
    positions: dict[tuple[str, int], int] = field(default_factory=dict)


def create_app(
    settings: Any,
    shared: SharedSettings,
    *,
    partitions: int,
    datadir: Path,
    metrics: StreamsMetrics | None = None,
) -> StreamsApp:
    """Build the app for ``partitions`` ops partitions (see :func:`streams.provision`).

    ``datadir`` is where Faust creates its (empty, as tables live in memory)
    directories; Faust's default is one named after the app in the working directory.
    """
    from streams.agents import materialize, reconcile

    topics = shared.topics
    app = faust.App(
        group_id(topics, settings.app_id),
        broker=[f"kafka://{host}" for host in shared.kafka_bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        datadir=datadir,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        processing_guarantee=settings.processing_guarantee,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
        web_enabled=settings.web_enabled,
        web_port=settings.web_port,
        web_host="127.0.0.1",
        table_standby_replicas=0,
        # reconcile hands aiokafka whole record batches (streams.outputs): room for a
        # batch of ops' outputs per partition, well under Kafka's default 1 MiB limit
        producer_max_batch_size=_PRODUCER_BATCH_BYTES,
    )

    def topic(name: str) -> Any:
        return app.topic(name, schema=_raw_schema(), partitions=partitions)

    ctx = StreamsApp(
        faust=app,
        settings=settings,
        shared=shared,
        topics=topics,
        partitions=partitions,
        metrics=metrics or StreamsMetrics(),
        ops=topic(topics.ops),
        entities=topic(topics.entities),
        conflicts=topic(topics.conflicts),
        receipts=topic(topics.receipts),
        dlq=topic(topics.ops_dlq),
        # key_type/value_type bytes make Faust recover the changelog with the raw codec
        table=app.Table(
            "entities",
            default=None,
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            schema=_raw_schema(),
        ),
    )
    _keep_buffers_while_flowing(app.flow_control)
    _bound_fetch_wait(app.transport, settings.fetch_max_wait_ms)
    _rewind_uncommitted_to_start(app.transport)
    reconcile.register(ctx)
    materialize.register(ctx)
    _register_lag(ctx)
    return ctx


def _keep_buffers_while_flowing(flow_control: Any) -> None:
    """Make ``resume`` clear the agents' buffers only when flow really was suspended.

    Faust's table recovery resumes the stream partitions, seeks them to the committed
    offsets and then calls ``flow_control.resume()`` again although flow is already
    active; every resume clears the agent buffers, so records fetched in between were
    dropped and later commits passed over them (ops never applied). Buffers hold records
    from before a seek only while flow is suspended, so that is the only time to clear.
    """
    resume = flow_control.resume

    def resume_if_suspended() -> None:
        if not flow_control.is_active():
            resume()

    flow_control.resume = resume_if_suspended


def _bound_fetch_wait(transport: Any, wait_ms: int) -> None:
    """Give the worker's aiokafka consumer a fetch long-poll of ``wait_ms``.

    Faust hard-codes ``fetch_max_wait_ms=1500``. aiokafka keeps one fetch in flight per
    broker and leaves out of it the partitions whose records still wait to be consumed
    (after its 100 ms prefetch backoff). When the agent takes longer than that over a
    batch, the next fetch asks only for the partitions with no queued records, often
    only Faust's idle ``__assignor-__leader`` topic, and parks for the full 1.5 s: the
    ops that arrive meanwhile are not fetched until it times out. Each such round then
    brings 1.5 s of ops, which again takes longer than the backoff, so the worker keeps
    stalling (mostly idle, ops ~1.5 s late) until a round happens to be quick.
    """
    create_consumer = transport.create_consumer

    def create(*args: Any, **kwargs: Any) -> Any:
        consumer = create_consumer(*args, **kwargs)
        thread = consumer._thread
        create_worker_consumer = thread._create_worker_consumer

        def create_bounded(*a: Any, **kw: Any) -> Any:
            aio = create_worker_consumer(*a, **kw)
            aio._fetch_max_wait_ms = wait_ms  # read by start(), which builds the fetcher
            return aio

        thread._create_worker_consumer = create_bounded
        return consumer

    transport.create_consumer = create


def _rewind_uncommitted_to_start(transport: Any) -> None:
    """Make "seek to the committed offsets" also rewind partitions with none to the start.

    Faust seeks the stream partitions to their committed offsets whenever it may have
    skipped records, notably right after table recovery: between pausing the changelog
    partitions and resuming the ops partitions the worker has no active partition, and a
    fetch taken then hands over every buffered record, ops included, which Faust drops as
    not active. The seek repairs that, but aiokafka's ``seek_to_committed`` leaves a
    partition with no committed offset where it is, past the dropped records: the ops a
    worker killed within its first commit interval left behind were never applied. With
    nothing committed, the committed position is the start of the log
    (``auto_offset_reset=earliest``), so that is where such partitions go. Changelog
    partitions are Faust's own business (recovery seeks them itself).
    """
    create_consumer = transport.create_consumer

    def create(*args: Any, **kwargs: Any) -> Any:
        consumer = create_consumer(*args, **kwargs)
        seek_to_committed = consumer.seek_to_committed

        async def seek_to_committed_or_start() -> Mapping[Any, int | None]:
            committed: Mapping[Any, int | None] = await seek_to_committed()
            fresh = [
                tp
                for tp, offset in committed.items()
                if not offset and not consumer._is_changelog_tp(tp)
            ]
            if fresh:
                await consumer._thread.seek_to_beginning(*fresh)
            return committed

        consumer.seek_to_committed = seek_to_committed_or_start
        return consumer

    transport.create_consumer = create


def _raw_schema() -> Any:
    """Keys and values as bytes; a fresh Schema each time (Faust mutates the ones it gets)."""
    return faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def _register_lag(ctx: StreamsApp) -> None:
    """Lag of the ops partitions Faust assigned (materialize measures its own)."""
    roles = {ctx.topics.ops: "ops"}

    @ctx.faust.timer(ctx.settings.lag_interval_s)
    async def measure_lag() -> None:
        consumer = ctx.faust.consumer
        totals: dict[str, int] = dict.fromkeys(roles.values(), 0)
        for tp in consumer.assignment():
            role = roles.get(tp.topic)
            highwater = consumer.highwater(tp)
            position = ctx.positions.get((tp.topic, tp.partition))
            if role is None or highwater is None or position is None:
                continue
            totals[role] += max(0, highwater - position)
        for role, lag in totals.items():
            ctx.metrics.consumer_lag.labels(role).set(lag)


def run_worker(settings: Any, shared: SharedSettings) -> int:
    """Create the topics, then run the worker until SIGINT/SIGTERM; returns an exit code."""
    if not shared.redis_url:
        raise StreamsError(
            "SYNCPIPE_REDIS_URL is not set: streams materializes entity state into Redis"
        )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    partitions = loop.run_until_complete(
        ensure_topics(
            shared.kafka_bootstrap,
            shared.topics,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
            timeout_s=settings.topic_timeout_s,
        )
    )
    with tempfile.TemporaryDirectory(prefix="syncpipe-streams-") as datadir:
        ctx = create_app(settings, shared, partitions=partitions, datadir=Path(datadir))
        ctx.metrics.serve(settings.metrics_host, settings.metrics_port)
        log.info(
            "streams starting",
            extra={
                "group": ctx.faust.conf.id,
                "partitions": partitions,
                "prefix": shared.topic_prefix,
            },
        )
        worker = faust.Worker(
            ctx.faust, loop=loop, override_logging=False, redirect_stdouts=False, quiet=True
        )
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0
