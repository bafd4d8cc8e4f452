"""Reading and writing whole topics for the replay tools (aiokafka, no group)."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from streams.errors import BrokerUnavailableError, ReplayError


class Progress:
    """Plain-text progress on stderr: ``label done/total (pct%)``, at most ~5 times a second."""

    def __init__(self, label: str, total: int, out: TextIO | None = None) -> None:
        self.label, self.total, self.done = label, max(total, 0), 0
        self._out = out if out is not None else sys.stderr
        self._shown = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._shown >= 0.2:
            self._shown = now
            self._print("\r")

    def finish(self) -> None:
        self._print("\r")
        self._out.write("\n")
        self._out.flush()

    def _print(self, lead: str) -> None:
        pct = 100.0 if not self.total else 100.0 * self.done / self.total
        self._out.write(f"{lead}{self.label} {self.done}/{self.total} ({pct:.0f}%)")
        self._out.flush()


async def consumer(bootstrap: str) -> Any:
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    try:
        await c.start()
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailableError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    return c


async def producer(bootstrap: str) -> Any:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        await p.start()
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailableError(f"cannot reach Kafka at {bootstrap}: {exc!r}") from exc
    return p


async def partitions(c: Any, topic: str) -> list[TopicPartition]:
    """The partitions of an existing topic (never auto-creates it)."""
    topics = await c.topics()
    if topic not in topics:
        raise ReplayError(f"topic {topic!r} does not exist")
    parts = c.partitions_for_topic(topic)
    if not parts:
        await c._client.add_topic(topic)  # track it, then fetch its metadata
        parts = c.partitions_for_topic(topic)
    if not parts:
        raise ReplayError(f"topic {topic!r} has no partitions in the cluster metadata")
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def bounds(
    c: Any, tps: list[TopicPartition], start: dict[int, int] | None = None
) -> tuple[dict[int, int], dict[int, int]]:
    """Start (given, else earliest) and end offsets per partition."""
    first = await c.beginning_offsets(tps)
    last = await c.end_offsets(tps)
    starts = {
        tp.partition: max(first[tp], (start or {}).get(tp.partition, first[tp])) for tp in tps
    }
    return starts, {tp.partition: last[tp] for tp in tps}


async def read_range(
    c: Any, topic: str, starts: dict[int, int], ends: dict[int, int]
) -> AsyncIterator[Any]:
    """Records of each partition in ``[start, end)``, partition by partition, in order."""
    for partition in sorted(starts):
        start, end = starts[partition], ends[partition]
        if start >= end:
            continue
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, start)
        position = start
        while position < end:
            batch = await c.getmany(tp, timeout_ms=500, max_records=2000)
            for record in batch.get(tp, []):
                if record.offset >= end:
                    position = end
                    break
                position = record.offset + 1
                yield record
            else:
                position = max(position, await c.position(tp))


async def latest_by_key(c: Any, topic: str, progress: bool = False) -> dict[bytes, dict[str, Any]]:
    """The highest-version JSON value per key of a topic (a compacted topic's view)."""
    import orjson

    tps = await partitions(c, topic)
    starts, ends = await bounds(c, tps)
    bar = (
        Progress(f"reading {topic}", sum(ends[p] - starts[p] for p in starts)) if progress else None
    )
    out: dict[bytes, dict[str, Any]] = {}
    async for record in read_range(c, topic, starts, ends):
        if bar:
            bar.advance()
        if record.value is None:
            out.pop(record.key, None)
            continue
        doc = orjson.loads(record.value)
        held = out.get(record.key)
        if held is None or doc.get("version", 0) >= held.get("version", 0):
            out[record.key] = doc
    if bar:
        bar.finish()
    return out
