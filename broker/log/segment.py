"""One segment file: record batches as received (after offset assignment), back to back.

A segment is named by its base offset (``00000000000000000042.log``). Beside the bytes we
keep two sparse in-memory indexes, one entry every ``index_interval_bytes``: offset ->
file position (to start a fetch without scanning from the top) and max timestamp so far
-> offset (for ListOffsets by time and for retention).

When a segment is closed (rolled) both indexes are written beside it
(``.index``, ``.timeindex``), stamped with the segment's size; on start-up a closed
segment whose index files match its size is loaded without reading the log. The tail
segments, and any segment whose index is missing or stale, are rebuilt from the batch
headers, so an index can never disagree with the data.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

from broker.codec.records import HEADER_SIZE, LOG_OVERHEAD, BatchHeader, parse_header

SUFFIX = ".log"
INDEX_SUFFIXES = (".index", ".timeindex")
_INDEX_HEAD = struct.Struct(">qqqi")  # segment size, next offset, max timestamp, entries
_INDEX_ENTRY = struct.Struct(">qq")  # offset, position | timestamp, offset


def segment_path(directory: Path, base_offset: int) -> Path:
    return directory / f"{base_offset:020d}{SUFFIX}"


@dataclass(slots=True)
class Segment:
    base_offset: int
    path: Path
    fd: int
    index_interval: int
    size: int = 0
    next_offset: int = -1
    max_timestamp: int = -1
    created_at: float = field(default_factory=time.time)
    idx_offsets: list[int] = field(default_factory=list)
    idx_positions: list[int] = field(default_factory=list)
    time_ts: list[int] = field(default_factory=list)
    time_offsets: list[int] = field(default_factory=list)
    _since_index: int = 0

    @classmethod
    def create(cls, directory: Path, base_offset: int, index_interval: int) -> Segment:
        path = segment_path(directory, base_offset)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        return cls(base_offset, path, fd, index_interval, next_offset=base_offset)

    @classmethod
    def open_existing(cls, path: Path, index_interval: int) -> Segment:
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        base = int(path.name[: -len(SUFFIX)])
        seg = cls(base, path, fd, index_interval, next_offset=base)
        seg.created_at = os.fstat(fd).st_mtime
        return seg

    def index_paths(self) -> tuple[Path, Path]:
        return self.path.with_suffix(INDEX_SUFFIXES[0]), self.path.with_suffix(INDEX_SUFFIXES[1])

    def write_indexes(self) -> None:
        """Persist both sparse indexes (closed segments only; best effort, not fsynced:
        a missing or stale index is rebuilt from the log)."""
        pairs = (
            list(zip(self.idx_offsets, self.idx_positions, strict=True)),
            list(zip(self.time_ts, self.time_offsets, strict=True)),
        )
        for path, rows in zip(self.index_paths(), pairs, strict=True):
            head = _INDEX_HEAD.pack(self.size, self.next_offset, self.max_timestamp, len(rows))
            body = b"".join(_INDEX_ENTRY.pack(a, b) for a, b in rows)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(head + body)
            os.replace(tmp, path)

    def load_indexes(self) -> bool:
        """Load index files written for exactly this segment size; False if unusable."""
        loaded: list[list[tuple[int, int]]] = []
        meta: tuple[int, int, int, int] | None = None
        for path in self.index_paths():
            try:
                raw = path.read_bytes()
            except OSError:
                return False
            if len(raw) < _INDEX_HEAD.size:
                return False
            size, next_offset, max_ts, count = _INDEX_HEAD.unpack_from(raw)
            if size != self.size or len(raw) != _INDEX_HEAD.size + count * _INDEX_ENTRY.size:
                return False
            if meta is not None and meta[:3] != (size, next_offset, max_ts):
                return False
            meta = (size, next_offset, max_ts, count)
            loaded.append(list(_INDEX_ENTRY.iter_unpack(raw[_INDEX_HEAD.size :])))
        assert meta is not None
        self.next_offset, self.max_timestamp = meta[1], meta[2]
        self.idx_offsets = [a for a, _ in loaded[0]]
        self.idx_positions = [b for _, b in loaded[0]]
        self.time_ts = [a for a, _ in loaded[1]]
        self.time_offsets = [b for _, b in loaded[1]]
        return True

    def delete_files(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        for path in self.index_paths():
            path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def note_batch(self, h: BatchHeader, position: int) -> None:
        """Index a batch now at ``position`` (on append and on recovery)."""
        if not self.idx_offsets or self._since_index >= self.index_interval:
            self.idx_offsets.append(h.base_offset)
            self.idx_positions.append(position)
            self._since_index = 0
        self._since_index += h.size
        if h.max_timestamp > self.max_timestamp:
            self.max_timestamp = h.max_timestamp
            self.time_ts.append(h.max_timestamp)
            self.time_offsets.append(h.base_offset)
        self.next_offset = h.last_offset + 1

    def append(self, data: bytes | bytearray, h: BatchHeader) -> None:
        position = self.size
        written = os.write(self.fd, data)
        while written < len(data):  # regular files rarely short-write; be exact anyway
            written += os.write(self.fd, memoryview(data)[written:])
        self.size += len(data)
        self.note_batch(h, position)

    def read(self, position: int, n: int) -> bytes:
        return os.pread(self.fd, n, position)

    def header_at(self, position: int) -> BatchHeader:
        return parse_header(os.pread(self.fd, HEADER_SIZE, position))

    def position_of(self, offset: int) -> int | None:
        """File position of the first batch whose last offset is >= ``offset``."""
        i = bisect.bisect_right(self.idx_offsets, offset) - 1
        pos = self.idx_positions[i] if i >= 0 else 0
        while pos + HEADER_SIZE <= self.size:
            h = self.header_at(pos)
            if h.last_offset >= offset:
                return pos
            pos += h.size
        return None

    def position_for_timestamp(self, ts: int) -> int | None:
        """Position of the first batch whose max timestamp is >= ``ts``, if any."""
        if self.max_timestamp < ts:
            return None
        i = bisect.bisect_left(self.time_ts, ts)
        start = self.time_offsets[i - 1] if i > 0 else self.base_offset
        pos = self.position_of(start)
        while pos is not None and pos + HEADER_SIZE <= self.size:
            h = self.header_at(pos)
            if h.max_timestamp >= ts:
                return pos
            pos += h.size
        return None

    def read_batches(self, position: int, max_bytes: int, limit_offset: int) -> bytes:
        """Whole batches from ``position`` below ``limit_offset``, at most ``max_bytes``
        except that the first batch is always returned whole (so a consumer always
        progresses)."""
        if position >= self.size:
            return b""
        want = min(max(max_bytes, HEADER_SIZE), self.size - position)
        buf = self.read(position, want)
        view = memoryview(buf)
        end = 0
        while end + HEADER_SIZE <= len(view):
            h = parse_header(view, end)
            if h.base_offset >= limit_offset:
                break
            if end + h.size > len(view):
                if end == 0:  # first batch bigger than max_bytes: return it whole
                    return self.read(position, h.size)
                break
            end += h.size
        return bytes(view[:end])

    def truncate_to(self, position: int) -> None:
        os.ftruncate(self.fd, position)
        self.size = position

    def batches(self) -> list[tuple[int, BatchHeader]]:
        """Every (position, header) in the segment: a header-only scan."""
        out: list[tuple[int, BatchHeader]] = []
        pos = 0
        while pos + HEADER_SIZE <= self.size:
            h = self.header_at(pos)
            if h.batch_length + LOG_OVERHEAD < HEADER_SIZE:
                break
            out.append((pos, h))
            pos += h.size
        return out
