"""Start-up recovery of one partition directory.

Every segment's batch headers are scanned (rebuilding the sparse indexes and the
idempotent-producer state); the last two segments are also CRC-checked batch by batch.
The log is truncated at the first batch that is torn or corrupt, and any later
segments are removed: what a ``kill -9`` mid-write leaves is never served.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from broker.codec.records import HEADER_SIZE, LOG_OVERHEAD, crc_of, parse_header
from broker.log.producers import ProducerStates
from broker.log.segment import SUFFIX, Segment

log = logging.getLogger(__name__)
CRC_CHECKED_SEGMENTS = 2


def _scan(seg: Segment, check_crc: bool, producers: ProducerStates) -> bool:
    """Index ``seg``; truncate it at the first bad batch. True if it was intact."""
    pos = 0
    expected = seg.base_offset
    while pos < seg.size:
        if seg.size - pos < HEADER_SIZE:
            break
        h = parse_header(os.pread(seg.fd, HEADER_SIZE, pos))
        if h.magic != 2 or h.batch_length + LOG_OVERHEAD < HEADER_SIZE:
            break
        if pos + h.size > seg.size or h.base_offset < expected:
            break
        if check_crc and crc_of(seg.read(pos, h.size)) != h.crc:
            break
        seg.note_batch(h, pos)
        producers.update(h)
        expected = h.last_offset + 1
        pos += h.size
    if pos == seg.size:
        return True
    log.warning(
        "truncating torn log tail",
        extra={"segment": str(seg.path), "position": pos, "dropped_bytes": seg.size - pos},
    )
    seg.truncate_to(pos)
    os.fsync(seg.fd)
    return False


def recover(directory: Path, index_interval: int) -> tuple[list[Segment], ProducerStates]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.cleaned"):
        stale.unlink()
    paths = sorted(directory.glob(f"*{SUFFIX}"))
    producers = ProducerStates()
    segments: list[Segment] = []
    for i, path in enumerate(paths):
        seg = Segment.open_existing(path, index_interval)
        seg.size = os.fstat(seg.fd).st_size
        intact = _scan(seg, i >= len(paths) - CRC_CHECKED_SEGMENTS, producers)
        segments.append(seg)
        if not intact:
            for later in paths[i + 1 :]:
                log.warning("removing segment after torn batch", extra={"segment": str(later)})
                later.unlink()
            break
    return segments, producers
