"""Background retention (delete whole old segments) and compaction, per topic policy."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from broker.log.partition import PartitionLog

if TYPE_CHECKING:
    from broker.cluster import Cluster

log = logging.getLogger(__name__)


def apply_retention(part: PartitionLog, now_ms: int) -> int:
    """Delete closed segments past retention.ms or beyond retention.bytes; count them."""
    cfg = part.config
    closed = part.segments[:-1]
    doomed = []
    if cfg.retention_ms >= 0:
        doomed = [
            s
            for s in closed
            if s.max_timestamp >= 0 and now_ms - s.max_timestamp > cfg.retention_ms
        ]
        # only a prefix may go: offsets stay contiguous from log start
        prefix = []
        for s in closed:
            if s in doomed:
                prefix.append(s)
            else:
                break
        doomed = prefix
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

    async def run_once(self) -> None:
        now_ms = int(time.time() * 1000)
        for topic in list(self.cluster.topics.values()):
            for part in list(topic.partitions):
                if part.closed:
                    continue
                if part.config.delete:
                    apply_retention(part, now_ms)
