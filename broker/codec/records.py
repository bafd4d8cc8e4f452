"""Record batch v2 (magic 2): header parsing, CRC-32C, records for compaction.

Layout (big-endian)::

    0  baseOffset int64         27 baseTimestamp int64
    8  batchLength int32        35 maxTimestamp int64
    12 partitionLeaderEpoch     43 producerId int64
    16 magic int8               51 producerEpoch int16
    17 crc uint32               53 baseSequence int32
    21 attributes int16         57 recordCount int32
    23 lastOffsetDelta int32    61 records...

The CRC covers bytes 21..end, so rewriting baseOffset and the leader epoch (what the
broker does on append) needs no CRC recomputation.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import cramjam
import google_crc32c

from broker.codec.primitives import Reader, Writer
from broker.errors import DecodeError

HEADER_SIZE = 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: bytes not counted by batchLength
_HEADER = struct.Struct(">qiibIhiqqqhii")
_OFFSET_LEN = struct.Struct(">qi")

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20
NO_PRODUCER_ID = -1


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        """Bytes on the wire and on disk, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence < 0:
            return self.base_sequence
        return (self.base_sequence + self.last_offset_delta) & 0x7FFFFFFF


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    if len(buf) - pos < HEADER_SIZE:
        raise DecodeError("record batch header truncated")
    return BatchHeader(*_HEADER.unpack_from(buf, pos))


def peek_offset_length(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, int]:
    """(baseOffset, batchLength) of the batch at ``pos``."""
    base, length = _OFFSET_LEN.unpack_from(buf, pos)
    return int(base), int(length)


def crc_of(batch: bytes | bytearray | memoryview) -> int:
    return int(google_crc32c.value(bytes(batch[21:])))


def split_batches(buf: bytes | memoryview) -> list[memoryview]:
    """Split a produce request's records into whole v2 batches; DecodeError if malformed."""
    view = memoryview(buf)
    out: list[memoryview] = []
    pos = 0
    while pos < len(view):
        if len(view) - pos < HEADER_SIZE:
            raise DecodeError("trailing bytes shorter than a batch header")
        _, length = peek_offset_length(view, pos)
        end = pos + LOG_OVERHEAD + length
        if length < HEADER_SIZE - LOG_OVERHEAD or end > len(view):
            raise DecodeError(f"batch length {length} out of bounds")
        out.append(view[pos:end])
        pos = end
    return out


def validate(batch: bytes | bytearray | memoryview) -> BatchHeader:
    """Parse and check magic and CRC; DecodeError says what is wrong."""
    h = parse_header(batch)
    if h.magic != 2:
        raise DecodeError(f"unsupported magic {h.magic}")
    if h.size != len(batch):
        raise DecodeError("batch length does not match its bytes")
    if crc_of(batch) != h.crc:
        raise DecodeError("crc mismatch")
    if h.record_count < 0 or h.last_offset_delta < 0:
        raise DecodeError("negative record count or offset delta")
    return h


def set_base_offset(batch: bytearray, base_offset: int, leader_epoch: int = 0) -> None:
    struct.pack_into(">q", batch, 0, base_offset)
    struct.pack_into(">i", batch, 12, leader_epoch)


def set_log_append_time(batch: bytearray, ts_ms: int) -> None:
    """LogAppendTime topics: stamp maxTimestamp, set the timestamp-type bit, fix the CRC."""
    (attrs,) = struct.unpack_from(">h", batch, 21)
    struct.pack_into(">h", batch, 21, attrs | TIMESTAMP_TYPE_BIT)
    struct.pack_into(">q", batch, 35, ts_ms)
    struct.pack_into(">I", batch, 17, crc_of(batch))


# --- records (only compaction and tests look inside batches) ---------------------------


@dataclass(frozen=True, slots=True)
class Record:
    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    attributes: int = 0


def _decompress(codec: int, data: bytes) -> bytes:
    try:
        return _decompress_raw(codec, data)
    except DecodeError:
        raise
    except Exception as exc:  # cramjam raises its own errors on garbage
        raise DecodeError(f"cannot decompress codec {codec}: {exc}") from exc


def _decompress_raw(codec: int, data: bytes) -> bytes:
    if codec == 0:
        return data
    if codec == 1:
        return bytes(cramjam.gzip.decompress(data))
    if codec == 2:
        return _snappy_decompress(data)
    if codec == 3:
        return bytes(cramjam.lz4.decompress(data))
    if codec == 4:
        return bytes(cramjam.zstd.decompress(data))
    raise DecodeError(f"unknown compression codec {codec}")


_XERIAL_MAGIC = b"\x82SNAPPY\x00"


def _snappy_decompress(data: bytes) -> bytes:
    """Raw snappy, or the xerial framing the Java client (and kafka-python) use."""
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out = bytearray()
    pos = 16
    while pos < len(data):
        (n,) = struct.unpack_from(">i", data, pos)
        pos += 4
        out += bytes(cramjam.snappy.decompress_raw(data[pos : pos + n]))
        pos += n
    return bytes(out)


def _read_record(r: Reader) -> Record:
    length = r.varint()
    start = r.pos
    attributes = r.int8()
    ts_delta = r.varint()
    off_delta = r.varint()
    klen = r.varint()
    key = None if klen < 0 else bytes(r._take(klen))
    vlen = r.varint()
    value = None if vlen < 0 else bytes(r._take(vlen))
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(r.varint()):
        hk = r.varint()
        name = bytes(r._take(hk)).decode(errors="replace")
        hv = r.varint()
        headers.append((name, None if hv < 0 else bytes(r._take(hv))))
    if r.pos - start != length:
        raise DecodeError("record length mismatch")
    return Record(off_delta, ts_delta, key, value, tuple(headers), attributes)


def iter_records(batch: bytes | bytearray | memoryview) -> Iterator[Record]:
    """Decode the records of one batch, decompressing if needed."""
    h = parse_header(batch)
    body = _decompress(h.compression, bytes(batch[HEADER_SIZE : h.size]))
    r = Reader(body)
    for _ in range(h.record_count):
        yield _read_record(r)


def _encode_record(w: Writer, rec: Record) -> None:
    inner = Writer()
    inner.int8(rec.attributes).varint(rec.timestamp_delta).varint(rec.offset_delta)
    for part in (rec.key, rec.value):
        if part is None:
            inner.varint(-1)
        else:
            inner.varint(len(part)).raw(part)
    inner.varint(len(rec.headers))
    for name, hv in rec.headers:
        nb = name.encode()
        inner.varint(len(nb)).raw(nb)
        if hv is None:
            inner.varint(-1)
        else:
            inner.varint(len(hv)).raw(hv)
    body = inner.getvalue()
    w.varint(len(body)).raw(body)


def encode_batch(
    records: list[Record],
    *,
    base_offset: int,
    base_timestamp: int,
    max_timestamp: int,
    last_offset_delta: int | None = None,
    attributes: int = 0,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    leader_epoch: int = 0,
) -> bytes:
    """An uncompressed batch (compression bits of ``attributes`` are cleared)."""
    w = Writer()
    for rec in records:
        _encode_record(w, rec)
    body = w.getvalue()
    if last_offset_delta is None:
        last_offset_delta = max((r.offset_delta for r in records), default=0)
    after_crc = (
        struct.pack(
            ">hiqqqhii",
            attributes & ~COMPRESSION_MASK,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
        + body
    )
    crc = int(google_crc32c.value(after_crc))
    length = 4 + 1 + 4 + len(after_crc)
    return struct.pack(">qiibI", base_offset, length, leader_epoch, 2, crc) + after_crc
