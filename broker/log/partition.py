"""The log of one topic partition: append, read, offsets, fetch wake-ups.

Offsets::

    log_start_offset <= ... <= high_watermark <= log_end_offset

The high watermark is what consumers may read: under the ``group`` fsync policy it is
the end of the data already fsynced, so no consumer ever sees a record that a crash
could take back; under the other policies it equals the log end offset.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from broker import errors
from broker.codec.records import (
    TIMESTAMP_TYPE_BIT,
    BatchHeader,
    iter_records,
    set_base_offset,
    set_log_append_time,
)
from broker.log.config import LogConfig
from broker.log.flush import Flusher
from broker.log.recovery import PRODUCERS_SUFFIX, recover, snapshot_path
from broker.log.segment import Segment

log = logging.getLogger(__name__)

DUPLICATE_SEQUENCE_NUMBER = errors.code("DUPLICATE_SEQUENCE_NUMBER")


@dataclass(frozen=True, slots=True)
class AppendResult:
    error: int = errors.NONE
    base_offset: int = -1
    log_append_time: int = -1


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartitionLog:
    def __init__(
        self, topic: str, index: int, directory: Path, config: LogConfig, flusher: Flusher
    ) -> None:
        self.topic = topic
        self.index = index
        self.dir = directory
        self.config = config
        self.flusher = flusher
        segments, self.producers = recover(directory, config.index_interval_bytes)
        if not segments:
            segments = [Segment.create(directory, 0, config.index_interval_bytes)]
            fsync_dir(directory)
        self.segments = segments
        self.log_start_offset = segments[0].base_offset
        self.log_end_offset = segments[-1].next_offset
        self.high_watermark = self.log_end_offset
        self._waiters: set[asyncio.Future[None]] = set()
        self.closed = False

    # --- append -------------------------------------------------------------------

    @property
    def active(self) -> Segment:
        return self.segments[-1]

    def append(self, batches: list[tuple[bytearray, BatchHeader]]) -> AppendResult:
        """Assign offsets and write; durability is awaited separately (see Flusher)."""
        for _, h in batches:
            verdict = self.producers.check(h)
            if verdict.duplicate_of is not None:
                if len(batches) == 1:  # a retry: answer with the original offset
                    return AppendResult(base_offset=verdict.duplicate_of)
                return AppendResult(error=DUPLICATE_SEQUENCE_NUMBER)
            if verdict.error != errors.NONE:
                return AppendResult(error=verdict.error)
        now_ms = int(time.time() * 1000)
        first = self.log_end_offset
        for buf, h in batches:
            if self.config.log_append_time:
                set_log_append_time(buf, now_ms)
            set_base_offset(buf, self.log_end_offset)
            h = BatchHeader(
                self.log_end_offset,
                h.batch_length,
                0,
                h.magic,
                h.crc,
                h.attributes,
                h.last_offset_delta,
                h.base_timestamp,
                now_ms if self.config.log_append_time else h.max_timestamp,
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.record_count,
            )
            self._maybe_roll(len(buf))
            self.active.append(buf, h)
            self.producers.update(h)
            self.log_end_offset = h.last_offset + 1
        self._mark_dirty(sum(len(buf) for buf, _ in batches))
        return AppendResult(
            base_offset=first, log_append_time=now_ms if self.config.log_append_time else -1
        )

    def _maybe_roll(self, incoming: int) -> None:
        seg = self.active
        if seg.size == 0:
            return
        too_big = seg.size + incoming > self.config.segment_bytes
        too_old = (time.time() - seg.created_at) * 1000 >= self.config.segment_ms
        if too_big or too_old:
            self.roll()

    def roll(self) -> None:
        """Close the active segment (persisting its indexes and a producer-state snapshot
        for recovery) and start a new one at the log end offset."""
        self.active.write_indexes()
        snap = snapshot_path(self.dir, self.log_end_offset)
        tmp = snap.with_name(snap.name + ".tmp")
        tmp.write_bytes(self.producers.snapshot())
        os.replace(tmp, snap)
        for old in sorted(self.dir.glob(f"*{PRODUCERS_SUFFIX}"))[:-2]:
            old.unlink(missing_ok=True)
        self.segments.append(
            Segment.create(self.dir, self.log_end_offset, self.config.index_interval_bytes)
        )
        fsync_dir(self.dir)
        log.debug(
            "segment rolled",
            extra={"topic": self.topic, "partition": self.index, "offset": self.log_end_offset},
        )

    def _mark_dirty(self, nbytes: int) -> None:
        end = self.log_end_offset

        def durable() -> None:
            if end > self.high_watermark and not self.closed:
                self.high_watermark = end
                self.wake()

        self.flusher.mark(self, self.active.fd, durable, nbytes)

    # --- read ---------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> tuple[int, bytes]:
        """(error, whole batches from ``offset``) below the high watermark."""
        if offset < self.log_start_offset or offset > self.log_end_offset:
            return errors.OFFSET_OUT_OF_RANGE, b""
        if offset >= self.high_watermark:
            return errors.NONE, b""
        i = max(bisect.bisect_right([s.base_offset for s in self.segments], offset) - 1, 0)
        for seg in self.segments[i:]:
            pos = seg.position_of(offset)
            if pos is not None:
                return errors.NONE, seg.read_batches(pos, max_bytes, self.high_watermark)
        return errors.NONE, b""

    def lookup_timestamp(self, ts: int) -> tuple[int, int]:
        """(timestamp, offset) of the first record with timestamp >= ``ts``, or (-1, -1)."""
        for seg in self.segments:
            pos = seg.position_for_timestamp(ts)
            if pos is None:
                continue
            h = seg.header_at(pos)
            if h.base_offset >= self.high_watermark:
                break
            if h.attributes & TIMESTAMP_TYPE_BIT:
                return h.max_timestamp, h.base_offset
            for rec in iter_records(seg.read(pos, h.size)):
                if h.base_timestamp + rec.timestamp_delta >= ts:
                    return h.base_timestamp + rec.timestamp_delta, h.base_offset + rec.offset_delta
        return -1, -1

    def size_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    # --- fetch long-poll ----------------------------------------------------------

    def add_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.add(fut)

    def remove_waiter(self, fut: asyncio.Future[None]) -> None:
        self._waiters.discard(fut)

    def wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # --- lifecycle ----------------------------------------------------------------

    def delete_segments(self, doomed: list[Segment]) -> None:
        """Drop whole segments from the head (retention). The active one is never dropped."""
        for seg in doomed:
            if seg is self.active:
                continue
            self.segments.remove(seg)
            seg.delete_files()
        self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)

    def close(self) -> None:
        self.closed = True
        self.flusher.forget(self)
        self.wake()
        for seg in self.segments:
            seg.close()
