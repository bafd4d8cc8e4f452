"""The log source: every partition of entities, conflicts and receipts, from the end.

Every push replica must see every event (its clients may be subscribed to anything), so
the consumer has no group: it assigns itself all partitions of the three topics and
starts at their end (a replica has no use for history; resume beyond its buffer is a
Redis snapshot). It tells the hub the starting offsets of ``entities`` (the floor of the
resume buffer) and dispatches each record as it comes. A record that breaks the
contract is counted in ``syncpipe_push_records_invalid_total`` and skipped. If the
consumer fails it is rebuilt after a backoff and continues from the next offset of every
partition it had, so subscribers see no gap; only partitions new to it start at their
end (and restart the hub's resume buffer).

Dispatch is synchronous per record; between records the source yields to the event loop
at least every ``YIELD_EVERY_S`` so connection writers flush while a large fetch is fanned
out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final, Protocol

# aiokafka ships no type information (no py.typed); its objects are Any here.
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from push.errors import SourceUnavailableError
from push.hub import Hub
from push.metrics import PushMetrics
from push.records import RecordError, decode_conflict, decode_entity, decode_receipt
from push.settings import PushSettings
from schemas.settings import SharedSettings

log = logging.getLogger(__name__)

YIELD_EVERY_S: Final = 0.002
BACKOFF_S: Final = (0.2, 0.5, 1.0, 2.0, 5.0)


class Source(Protocol):
    """What the app needs from a source of log events."""

    @property
    def ready(self) -> bool: ...

    async def run(self) -> None:
        """Consume until cancelled."""


class KafkaSource:
    """aiokafka consumer with manual assignment of every partition (no consumer group)."""

    def __init__(
        self,
        shared: SharedSettings,
        settings: PushSettings,
        hub: Hub,
        metrics: PushMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared = shared
        self.settings = settings
        self.hub = hub
        self.metrics = metrics
        self.clock = clock
        topics = shared.topics
        self.entities, self.conflicts, self.receipts = (
            topics.entities,
            topics.conflicts,
            topics.receipts,
        )
        self._ready = False
        self._next: dict[TopicPartition, int] = {}  # next offset to dispatch, per partition

    @property
    def ready(self) -> bool:
        return self._ready

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._consume()
            except (KafkaError, OSError, SourceUnavailableError) as exc:
                self._ready = False
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                log.warning(
                    "source unavailable: %r; retrying in %.1f s",
                    exc,
                    delay,
                    extra={"error": repr(exc), "retry_s": delay},
                )
                await asyncio.sleep(delay)

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.shared.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"syncpipe-{self.settings.node}",
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            tps = await self._partitions(consumer)
            consumer.assign(tps)
            fresh = [tp for tp in tps if tp not in self._next]
            for tp in tps:
                if tp in self._next:  # a restarted consumer continues where it stopped
                    consumer.seek(tp, self._next[tp])
            if fresh:
                await consumer.seek_to_end(*fresh)
                for tp in fresh:
                    self._next[tp] = await consumer.position(tp)
            if not self.hub.started or any(tp.topic == self.entities for tp in fresh):
                starts = {tp.partition: self._next[tp] for tp in tps if tp.topic == self.entities}
                self.hub.start(starts)
            self._ready = True
            log.info("source started", extra={"partitions": len(tps), "new": len(fresh)})
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                await self._dispatch(batch)
        finally:
            self._ready = False
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        wanted = (self.entities, self.conflicts, self.receipts)
        for attempt in range(1_000_000):
            existing = await consumer.topics()
            missing = [t for t in wanted if t not in existing]
            if not missing:
                break
            if attempt % 20 == 0:
                log.info("waiting for topics", extra={"missing": missing})
            await asyncio.sleep(0.25)
        # The consumer only knows partitions of topics it already tracks; ask for them
        # (only once they exist: a metadata request for a missing topic could create it).
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.shared.kafka_bootstrap,
            client_id=f"syncpipe-{self.settings.node}-admin",
        )
        await admin.start()
        try:
            described = await admin.describe_topics(list(wanted))
        finally:
            await admin.close()
        found = {
            t["topic"]: sorted(p["partition"] for p in t["partitions"])
            for t in described
            if t.get("error_code", 0) == 0
        }
        out: list[TopicPartition] = []
        for topic in wanted:
            if not found.get(topic):
                raise SourceUnavailableError(f"topic {topic} has no partitions in metadata")
            out.extend(TopicPartition(topic, p) for p in found[topic])
        return out

    async def _dispatch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        hub, metrics = self.hub, self.metrics
        started = self.clock()
        for tp, records in batch.items():
            topic = tp.topic
            label = topic.removeprefix(self.shared.topic_prefix)
            for record in records:
                self._next[tp] = record.offset + 1
                key, value = record.key, record.value
                metrics.records[label] += 1
                try:
                    if topic == self.entities:
                        hub.entity(tp.partition, record.offset, decode_entity(key, value))
                    elif topic == self.conflicts:
                        hub.client_event(decode_conflict(key, value))
                    else:
                        hub.client_event(decode_receipt(key, value))
                except RecordError as exc:
                    metrics.records_invalid[(label, exc.reason)] += 1
                    log.debug(
                        "record skipped",
                        extra={
                            "topic": topic,
                            "partition": tp.partition,
                            "offset": record.offset,
                            "reason": str(exc),
                        },
                    )
                if self.clock() - started >= YIELD_EVERY_S:
                    await asyncio.sleep(0)
                    started = self.clock()
