"""Log compaction for ``cleanup.policy=compact``: keep the latest record per key.

Only closed segments are cleaned (the active one is still being written). The work is
split so that produce and fetch never wait for it:

1. :func:`plan` (worker thread): read the closed segments through their own file
   descriptors, build key -> latest offset, and write a cleaned copy of each segment
   that loses records to ``<name>.cleaned`` (fsynced). Offsets never change; a batch
   that keeps some records is re-encoded uncompressed with the same base offset and
   offset span; a batch that keeps all is copied byte for byte.
2. :func:`swap` (event loop): atomically rename each cleaned file over its segment and
   reopen it. A crash between the two leaves a stale ``.cleaned`` that recovery deletes.

Tombstones (null values) are dropped once their batch is older than delete.retention.ms.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from broker.codec import records
from broker.log.partition import PartitionLog, fsync_dir
from broker.log.segment import Segment

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cleaned:
    segment: Segment
    path: Path
    bytes_before: int
    bytes_after: int


def _batches(seg: Segment) -> list[tuple[records.BatchHeader, bytes]]:
    return [(h, seg.read(pos, h.size)) for pos, h in seg.batches()]


@dataclass(frozen=True, slots=True)
class Plan:
    cleaned: list[Cleaned]
    next_tombstone_expiry_ms: int | None  # when a kept tombstone becomes removable


def plan(segments: list[Segment], now_ms: int, delete_retention_ms: int) -> Plan:
    """Write cleaned copies of ``segments`` that shrink; runs in a worker thread."""
    latest: dict[bytes, int] = {}
    for seg in segments:
        for h, data in _batches(seg):
            if h.is_control:
                continue
            for rec in records.iter_records(data):
                if rec.key is not None:
                    latest[rec.key] = h.base_offset + rec.offset_delta
    out: list[Cleaned] = []
    next_expiry: int | None = None
    for seg in segments:
        chunks: list[bytes] = []
        changed = False
        for h, data in _batches(seg):
            if h.is_control:
                chunks.append(data)
                continue
            recs = list(records.iter_records(data))
            expires_at = h.max_timestamp + delete_retention_ms
            expired = now_ms >= expires_at
            keep = [
                r
                for r in recs
                if r.key is None
                or (
                    latest.get(r.key) == h.base_offset + r.offset_delta
                    and not (r.value is None and expired)
                )
            ]
            if not expired and any(r.value is None for r in keep):
                next_expiry = expires_at if next_expiry is None else min(next_expiry, expires_at)
            if len(keep) == len(recs):
                chunks.append(data)
                continue
            changed = True
            if keep:
                chunks.append(
                    records.encode_batch(
                        keep,
                        base_offset=h.base_offset,
                        base_timestamp=h.base_timestamp,
                        max_timestamp=h.max_timestamp,
                        last_offset_delta=h.last_offset_delta,
                        attributes=h.attributes,
                        producer_id=h.producer_id,
                        producer_epoch=h.producer_epoch,
                        base_sequence=h.base_sequence,
                        leader_epoch=h.leader_epoch,
                    )
                )
        if not changed:
            continue
        target = seg.path.with_name(seg.path.name + ".cleaned")
        with open(target, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        out.append(Cleaned(seg, target, seg.size, sum(len(c) for c in chunks)))
    return Plan(out, next_expiry)


def swap(part: PartitionLog, cleaned: list[Cleaned]) -> int:
    """Install cleaned segments (event loop only); returns bytes reclaimed."""
    reclaimed = 0
    for c in cleaned:
        if part.closed or c.segment not in part.segments or c.segment is part.active:
            c.path.unlink(missing_ok=True)
            continue
        i = part.segments.index(c.segment)
        os.replace(c.path, c.segment.path)
        c.segment.close()
        fresh = Segment.open_existing(c.segment.path, c.segment.index_interval)
        fresh.size = os.fstat(fresh.fd).st_size
        for pos, h in fresh.batches():
            fresh.note_batch(h, pos)
        fresh.next_offset = max(fresh.next_offset, c.segment.next_offset)
        fresh.write_indexes()
        part.segments[i] = fresh
        reclaimed += c.bytes_before - c.bytes_after
    if cleaned:
        fsync_dir(part.dir)
        log.info(
            "compacted",
            extra={
                "topic": part.topic,
                "partition": part.index,
                "segments": len(cleaned),
                "reclaimed_bytes": reclaimed,
            },
        )
    return reclaimed
