"""Background retention (delete whole old segments) and compaction, per topic policy.

One pass at a time, every ``cleanup_interval_ms``. Retention only unlinks closed
segments at the head of a log; compaction does its reading and writing in a worker
thread (see :mod:`broker.log.compaction`), so neither blocks produce or fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from broker.log import compaction
from broker.log.partition import PartitionLog
from broker.log.segment import Segment

if TYPE_CHECKING:
    from broker.cluster import Cluster

log = logging.getLogger(__name__)


def apply_retention(part: PartitionLog, now_ms: int) -> int:
    """Delete closed head segments past retention.ms or beyond retention.bytes."""
    cfg = part.config
    closed = part.segments[:-1]
    doomed: list[Segment] = []
    if cfg.retention_ms >= 0:
        for s in closed:
            if s.max_timestamp < 0 or now_ms - s.max_timestamp <= cfg.retention_ms:
                break  # only a prefix may go: offsets stay contiguous from log start
            doomed.append(s)
    if cfg.retention_bytes >= 0:
        total = part.size_bytes() - sum(s.size for s in doomed)
        for s in closed[len(doomed) :]:
            if total - s.size < cfg.retention_bytes:
                break
            doomed.append(s)
            total -= s.size
    if doomed:
        part.delete_segments(doomed)
        log.info(
            "retention deleted segments",
            extra={
                "topic": part.topic,
                "partition": part.index,
                "segments": len(doomed),
                "log_start_offset": part.log_start_offset,
            },
        )
    return len(doomed)


class Cleaner:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        # per partition: end offset of the last clean, and when a kept tombstone expires
        self._cleaned_upto: dict[int, int] = {}
        self._tombstone_due: dict[int, int] = {}

    async def run_once(self) -> None:
        now_ms = int(time.time() * 1000)
        for topic in list(self.cluster.topics.values()):
            for part in list(topic.partitions):
                if part.closed:
                    continue
                if part.config.delete:
                    apply_retention(part, now_ms)
                if part.config.compact:
                    await self.compact(part, now_ms)

    async def compact(self, part: PartitionLog, now_ms: int) -> int:
        lag = part.config.min_compaction_lag_ms
        closed = [s for s in part.segments[:-1] if now_ms - s.max_timestamp >= lag]
        if not closed:
            return 0
        new_data = closed[-1].next_offset > self._cleaned_upto.get(id(part), -1)
        due = self._tombstone_due.get(id(part))
        if not new_data and (due is None or now_ms < due):
            return 0
        try:
            result = await asyncio.to_thread(
                compaction.plan, closed, now_ms, part.config.delete_retention_ms
            )
        except OSError as exc:  # topic deleted or segment dropped under us: next pass
            log.info("compaction skipped", extra={"topic": part.topic, "error": str(exc)})
            return 0
        self._cleaned_upto[id(part)] = closed[-1].next_offset
        if result.next_tombstone_expiry_ms is None:
            self._tombstone_due.pop(id(part), None)
        else:
            self._tombstone_due[id(part)] = result.next_tombstone_expiry_ms
        return compaction.swap(part, result.cleaned)
