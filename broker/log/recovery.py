"""Start-up recovery of one partition directory.

The last two segments are re-read batch by batch with CRC checks, rebuilding their
sparse indexes and replaying their batches into the idempotent-producer state, which
starts from the snapshot taken when the first of them was rolled. Older segments load
their index files; a segment without a usable index (or a log without a snapshot) is
rebuilt from its batch headers. The log is truncated at the first batch that is torn
or corrupt, and any later segments are removed: what a ``kill -9`` mid-write leaves is
never served.
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


PRODUCERS_SUFFIX = ".producers"


def snapshot_path(directory: Path, base_offset: int) -> Path:
    return directory / f"{base_offset:020d}{PRODUCERS_SUFFIX}"


def _scan(seg: Segment, check_crc: bool, producers: ProducerStates | None) -> bool:
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
        if producers is not None:
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
    for stale in [*directory.glob("*.cleaned"), *directory.glob("*.tmp")]:
        stale.unlink()
    paths = sorted(directory.glob(f"*{SUFFIX}"))
    tail_from = max(0, len(paths) - CRC_CHECKED_SEGMENTS)
    producers: ProducerStates | None = None
    if tail_from > 0:
        base = int(paths[tail_from].name[: -len(SUFFIX)])
        try:
            producers = ProducerStates.from_snapshot(snapshot_path(directory, base).read_bytes())
        except (OSError, ValueError):
            producers = None
    from_snapshot = producers is not None
    states = producers if producers is not None else ProducerStates()
    segments: list[Segment] = []
    for i, path in enumerate(paths):
        seg = Segment.open_existing(path, index_interval)
        seg.size = os.fstat(seg.fd).st_size
        tail = i >= tail_from
        if not tail and from_snapshot and seg.load_indexes():
            segments.append(seg)
            continue
        intact = _scan(seg, tail, states if (tail or not from_snapshot) else None)
        segments.append(seg)
        if not intact:
            for later in paths[i + 1 :]:
                log.warning("removing segment after torn batch", extra={"segment": str(later)})
                Segment.open_existing(later, index_interval).delete_files()
            break
        if not tail:
            seg.write_indexes()
    return segments, states
