"""The Kafka producer behind POST /v1/ops: idempotent, acks=all, failures are 503s.

Lifecycle::

    (none) --first produce / readiness check: start()--> running
       ^                                                   |
       +---- reset: a produce failed or timed out <--------+

A producer that cannot start (broker down) raises :class:`BrokerUnavailableError`; the next
request tries again, so ingest recovers on its own when the broker returns. Because an
idempotent aiokafka producer retries a batch forever, a batch that is not acknowledged
within ``timeout_s`` would otherwise be written later, after the client was told 503: so
after a failure the producer is abandoned (its sender stopped, its unacknowledged records
failed) and the next produce starts a fresh one. A request already on the wire when that
happens may still have been written (the usual ambiguity of a lost ack; it is logged as
"record acknowledged after its request got 503"); the client's retry then writes the op
again and the streams job's idempotent apply reports the second copy as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.partitioner import DefaultPartitioner, murmur2

from ingest.dedupe import Written
from ingest.errors import BrokerUnavailableError, ProducerQueueFullError
from ingest.metrics import IngestMetrics

logger = logging.getLogger(__name__)

_START_BACKOFF_S: Final = 0.5

Record = tuple[bytes, bytes]
"""(key, value) of one ops-topic record."""


async def _settled(
    loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future[Any]], deadline: float
) -> bool:
    """Wait until every future is done (True) or the loop time reaches ``deadline`` (False).

    What ``asyncio.wait`` inside ``asyncio.timeout_at`` does, for half the CPU: one waiter,
    one timer, one callback per future.
    """
    waiter: asyncio.Future[bool] = loop.create_future()
    pending = len(futures)

    def one_done(_: asyncio.Future[Any]) -> None:
        nonlocal pending
        pending -= 1
        if pending == 0 and not waiter.done():
            waiter.set_result(True)

    def expired() -> None:
        if not waiter.done():
            waiter.set_result(False)

    for fut in futures:
        fut.add_done_callback(one_done)
    timer = loop.call_at(deadline, expired)
    try:
        return await waiter
    finally:
        timer.cancel()


class KeyPartitioner:
    """aiokafka's default partitioner (the Java client's: murmur2 of the key), remembering
    the hash of recent keys; the pure-Python murmur2 is a measurable share of a one-op
    request, and clients keep writing the same entities."""

    def __init__(self, max_keys: int = 65_536) -> None:
        self._max_keys = max_keys
        self._hashes: dict[bytes, int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(DefaultPartitioner()(key, all_partitions, available))
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= self._max_keys:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return all_partitions[hashed % len(all_partitions)]


def _late_outcome(fut: asyncio.Future[Any]) -> None:
    """A record we stopped waiting for settled: consume its error, report a late write."""
    if fut.cancelled() or fut.exception() is not None:
        return
    meta = fut.result()
    logger.warning(
        "record acknowledged after its request got 503",
        extra={"topic": meta.topic, "partition": meta.partition, "offset": meta.offset},
    )


class OpProducer:
    """Writes ops records and reports, per record, where it landed (or that it did not)."""

    def __init__(
        self,
        *,
        bootstrap: str,
        topic: str,
        client_id: str,
        timeout_s: float,
        max_inflight_ops: int,
        batch_bytes: int,
        linger_ms: int,
        retry_after_s: int,
        metrics: IngestMetrics,
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._max_inflight = max_inflight_ops
        self._batch_bytes = batch_bytes
        self._linger_ms = linger_ms
        self._retry_after_s = retry_after_s
        self._metrics = metrics
        self._produced_ok = metrics.produce_seconds.labels("ok")
        self._produced_failed = metrics.produce_seconds.labels("failed")
        self._producer: Any = None
        self._lock = asyncio.Lock()
        self._inflight = 0
        self._retiring: set[asyncio.Task[None]] = set()
        self._closed = False
        self._start_failed: tuple[float, str] | None = None  # (monotonic time, detail)
        self._unacked: dict[Any, set[asyncio.Future[Any]]] = {}  # per producer
        self._partitioner = KeyPartitioner()
        metrics.inflight_ops.set_function(lambda: self._inflight)

    def _unavailable(self, detail: str) -> BrokerUnavailableError:
        return BrokerUnavailableError(detail, retry_after_s=self._retry_after_s)

    async def start(self) -> bool:
        """Try to connect now (at app start); failing is fine, produce retries later."""
        try:
            await self._get()
        except BrokerUnavailableError as exc:
            logger.warning("broker unreachable at start", extra={"detail": exc.detail})
            return False
        return True

    async def _get(self) -> Any:
        producer = self._producer
        if producer is not None:
            return producer
        async with self._lock:
            if self._closed:
                raise self._unavailable("ingest is shutting down; retry on another replica")
            if self._producer is None:
                # Requests queued behind a failed start fail fast instead of each waiting
                # for its own connection attempt (a black-holed broker takes timeout_s).
                failed = self._start_failed
                if failed is not None and time.monotonic() - failed[0] < _START_BACKOFF_S:
                    raise self._unavailable(failed[1])
                try:
                    self._producer = await self._start_new()
                except BrokerUnavailableError as exc:
                    self._start_failed = (time.monotonic(), exc.detail)
                    raise
                self._start_failed = None
            return self._producer

    async def _start_new(self) -> Any:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            enable_idempotence=True,
            acks="all",
            request_timeout_ms=max(1, int(self._timeout_s * 1000)),
            max_batch_size=self._batch_bytes,
            linger_ms=self._linger_ms,
            partitioner=self._partitioner,
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._stop(producer)
            raise self._unavailable(
                f"Kafka unreachable at {self._bootstrap} ({exc.__class__.__name__}); "
                "nothing was written, retry later"
            ) from exc
        logger.info("producer started", extra={"bootstrap": self._bootstrap, "topic": self.topic})
        return producer

    async def produce(self, records: Sequence[Record]) -> list[Written | None]:
        """Write records concurrently; per record where it was written, or None if not.

        Raises :class:`ProducerQueueFullError` before handing anything over when this replica
        already has ``max_inflight_ops`` unacknowledged, and :class:`BrokerUnavailableError`
        when no producer can be started.
        """
        n = len(records)
        if self._inflight + n > self._max_inflight:
            raise ProducerQueueFullError(
                f"producer queue full: {self._inflight} ops awaiting the broker (limit "
                f"{self._max_inflight}); nothing was written, retry later",
                retry_after_s=self._retry_after_s,
            )
        self._inflight += n
        started = time.perf_counter()
        try:
            producer = await self._get()
            outcomes = await self._send_all(producer, records)
        finally:
            self._inflight -= n
        failed = outcomes.count(None)
        (self._produced_failed if failed else self._produced_ok).observe(
            time.perf_counter() - started
        )
        if failed:
            self._retire(producer)
        return outcomes

    async def _send_all(self, producer: Any, records: Sequence[Record]) -> list[Written | None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        futures: list[asyncio.Future[Any]] = []
        unacked = self._unacked.setdefault(producer, set())
        error: BaseException | None = None
        try:
            if len(records) == 1 and producer.client.cluster.partitions_for_topic(self.topic):
                # The common one-op request: send() can only wait for batch space, bounded
                # by the producer's request timeout (timeout_s), so it needs no timer here.
                await self._hand_over(producer, records, futures, unacked)
            else:  # metadata to fetch, or several waits for batch space: bound them all
                async with asyncio.timeout_at(deadline):
                    await self._hand_over(producer, records, futures, unacked)
            if futures and not await _settled(loop, futures, deadline):
                error = TimeoutError(f"no acknowledgement within {self._timeout_s:g} s")
        except (KafkaError, TimeoutError) as exc:
            error = exc
        outcomes: list[Written | None] = []
        for fut in futures:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                meta = fut.result()
                outcomes.append(Written(int(meta.partition), int(meta.offset)))
            else:
                if not fut.done():
                    fut.add_done_callback(_late_outcome)
                elif error is None and not fut.cancelled():
                    error = fut.exception()
                outcomes.append(None)
        outcomes.extend([None] * (len(records) - len(futures)))
        if error is not None:
            logger.warning(
                "produce failed",
                extra={
                    "topic": self.topic,
                    "error": repr(error),
                    "failed": outcomes.count(None),
                    "records": len(records),
                },
            )
        return outcomes

    async def _hand_over(
        self,
        producer: Any,
        records: Sequence[Record],
        futures: list[asyncio.Future[Any]],
        unacked: set[asyncio.Future[Any]],
    ) -> None:
        """Give the records to the producer; ``futures`` collects their acknowledgements."""
        for key, value in records:
            fut = await producer.send(self.topic, value=value, key=key)
            futures.append(fut)
            unacked.add(fut)
            fut.add_done_callback(unacked.discard)

    def _retire(self, producer: Any) -> None:
        """Discard a producer after a failure; the next produce starts a fresh one."""
        if self._producer is producer:
            self._producer = None
        task = asyncio.get_running_loop().create_task(self._stop(producer, abandon=True))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _stop(self, producer: Any, *, abandon: bool = False) -> None:
        """Stop a producer; with ``abandon``, give up on its unacknowledged records.

        An idempotent aiokafka producer retries a batch forever and ``stop()`` waits for
        them, and failing batches inside its accumulator trips its own bookkeeping. So an
        abandoned producer's sender task is stopped (it finishes the request already on
        the wire, bounded by the request timeout), its connections are closed, and the
        records still unacknowledged are failed here, on futures we hold.
        """
        unacked = self._unacked.pop(producer, set())
        try:
            if abandon:
                sender_task = producer._sender.sender_task  # aiokafka internals, see above
                if sender_task is not None and not sender_task.done():
                    sender_task.cancel()
                    await asyncio.wait([sender_task], timeout=self._timeout_s)
                producer._closed = True  # nothing left to flush; keeps __del__ quiet
                await producer.client.close()
            else:
                async with asyncio.timeout(self._timeout_s):
                    await producer.stop()
        except Exception as exc:  # a broken client may fail in any way while it shuts down
            logger.warning("producer stop failed", extra={"error": repr(exc)})
        for fut in unacked:
            if not fut.done():
                fut.set_exception(KafkaTimeoutError("producer abandoned after a failure"))

    async def ready(self, timeout_s: float) -> str | None:
        """None when the broker answers a metadata request, else why not."""
        try:
            async with asyncio.timeout(timeout_s):
                producer = await self._get()
                await producer.client.fetch_all_metadata()
        except BrokerUnavailableError as exc:
            return exc.detail
        except (KafkaError, OSError, TimeoutError) as exc:
            return f"Kafka metadata request failed ({exc.__class__.__name__})"
        return None

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            producer, self._producer = self._producer, None
        if producer is not None:
            await self._stop(producer)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)
