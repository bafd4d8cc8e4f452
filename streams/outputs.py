"""Producing the output records of a batch of ops straight through aiokafka.

Faust's ``Topic.send`` costs a FutureMessage, a schema pass, a trip through Faust's
producer buffer and an aiokafka partition lookup per record; at several output records
per op that was most of the worker's time. :class:`Outputs` collects the records of a
whole batch of ops, partitions them with the producer's own partitioner (cached per key)
and hands them to Faust's aiokafka producer, as whole record batches when there are many
(see :meth:`Outputs.send`).

Delivery: the batches go into the same aiokafka producer Faust flushes before it commits
offsets, so an offset is never committed before the outputs of its ops are acknowledged.
A batch that fails for good (the producer gave up after its retries) ends the process at
once, without the graceful stop that would commit offsets: the ops are then reprocessed
on restart, exactly as after ``kill -9``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Final, NoReturn

log = logging.getLogger(__name__)

FATAL_EXIT_CODE: Final = 70
_KEY_CACHE_SIZE: Final = 100_000
WHOLE_BATCH_RECORDS: Final = 64
"""From this many records for one partition on, they go as one ``BatchBuilder``."""

Record = tuple[bytes | None, bytes | None]


class Outputs:
    """Output records of one batch of ops, grouped by topic and partition."""

    def __init__(self, producer: Any, partitioner: Callable[[bytes | None, list[int]], int]):
        self._producer = producer  # aiokafka.AIOKafkaProducer (Faust's own)
        self._partitioner = partitioner
        self._partitions: dict[str, list[int]] = {}
        self._key_partition: dict[tuple[str, bytes], int] = {}
        self._records: dict[tuple[str, int], list[Record]] = {}
        self.count = 0

    async def prepare(self, *topics: str) -> None:
        """Fetch the partitions of the output topics (once, before the first batch)."""
        for topic in topics:
            if topic not in self._partitions:
                parts = await self._producer.partitions_for(topic)
                self._partitions[topic] = sorted(parts)

    def add(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> None:
        """Queue one record; ``partition`` None means by key, like every other producer."""
        if partition is None:
            partition = self._partition_of(topic, key)
        slot = (topic, partition)
        records = self._records.get(slot)
        if records is None:
            records = self._records[slot] = []
        records.append((key, value))
        self.count += 1

    def _partition_of(self, topic: str, key: bytes | None) -> int:
        if key is None:
            return self._partitioner(None, self._partitions[topic])
        cached = self._key_partition.get((topic, key))
        if cached is None:
            if len(self._key_partition) >= _KEY_CACHE_SIZE:
                self._key_partition.clear()
            cached = self._key_partition[(topic, key)] = self._partitioner(
                key, self._partitions[topic]
            )
        return cached

    async def send(self) -> None:
        """Hand every queued record to the producer without waiting for the broker.

        Few records for a partition join the producer's open batch one by one. Many are
        submitted as one ``BatchBuilder``, which is far cheaper per record but waits until
        the partition's previous batch went out in a request: under load that wait is
        short next to the work saved, and it keeps small batches (low rates) from paying
        a produce round trip. Faust's commit flushes the producer before committing.
        """
        records, self._records, self.count = self._records, {}, 0
        timestamp_ms = int(time.time() * 1000)
        for (topic, partition), items in records.items():
            try:
                if len(items) >= WHOLE_BATCH_RECORDS:
                    await self._send_batches(topic, partition, items, timestamp_ms)
                else:
                    await self._send_each(topic, partition, items, timestamp_ms)
            except Exception as exc:  # any failure here would lose outputs
                _fatal(f"cannot produce to {topic}[{partition}]: {exc!r}")

    async def _send_each(
        self, topic: str, partition: int, items: list[Record], timestamp_ms: int
    ) -> None:
        send = self._producer.send
        for key, value in items:
            future = await send(
                topic, value, key=key, partition=partition, timestamp_ms=timestamp_ms
            )
            future.add_done_callback(_check_delivered)

    async def _send_batches(
        self, topic: str, partition: int, items: list[Record], timestamp_ms: int
    ) -> None:
        batch = self._producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                await self._submit(batch, topic, partition)
                batch = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=timestamp_ms) is None:
                    _fatal(f"a record for {topic} is larger than the producer batch size")
        await self._submit(batch, topic, partition)

    async def _submit(self, batch: Any, topic: str, partition: int) -> None:
        future = await self._producer.send_batch(batch, topic, partition=partition)
        future.add_done_callback(_check_delivered)


def _check_delivered(future: asyncio.Future[Any]) -> None:
    if future.cancelled():
        return
    exc = future.exception()
    if exc is not None:
        _fatal(f"output batch not delivered: {exc!r}")


def _fatal(reason: str) -> NoReturn:
    """Exit now, committing nothing: the uncommitted ops are reprocessed on restart."""
    log.critical("exiting without committing: %s", reason, extra={"reason": reason})
    logging.shutdown()
    os._exit(FATAL_EXIT_CODE)
