"""Codec: golden bytes for primitives and headers; record batches against aiokafka's builder."""

from __future__ import annotations

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from broker.codec import records
from broker.codec.headers import frame_response, parse_request_header
from broker.codec.primitives import Reader, Writer
from broker.errors import DecodeError


@pytest.mark.parametrize(
    ("value", "golden"),
    [
        (0, b"\x00"),
        (-1, b"\x01"),
        (1, b"\x02"),
        (63, b"\x7e"),
        (-64, b"\x7f"),
        (64, b"\x80\x01"),
        (300, b"\xd8\x04"),
        (-(2**31), b"\xff\xff\xff\xff\x0f"),
    ],
    ids=["0", "-1", "1", "63", "-64", "64", "300", "int32min"],
)
def test_varint_zigzag_golden_bytes(value: int, golden: bytes) -> None:
    assert Writer().varint(value).getvalue() == golden
    assert Reader(golden).varint() == value


def test_writer_primitives_golden_bytes() -> None:
    w = Writer().int8(-1).int16(2).int32(3).int64(-2).boolean(True)
    w.string("ab").nullable_string(None).nullable_bytes(b"\x01").nullable_bytes(None)
    w.array([1, 2], lambda w, x: w.int16(x)).nullable_array(None, lambda w, x: w)
    assert w.getvalue() == (
        b"\xff"
        b"\x00\x02"
        b"\x00\x00\x00\x03"
        b"\xff\xff\xff\xff\xff\xff\xff\xfe"
        b"\x01"
        b"\x00\x02ab"
        b"\xff\xff"
        b"\x00\x00\x00\x01\x01"
        b"\xff\xff\xff\xff"
        b"\x00\x00\x00\x02\x00\x01\x00\x02"
        b"\xff\xff\xff\xff"
    )


def test_request_header_v1_golden_bytes() -> None:
    frame = b"\x00\x03\x00\x08\x00\x00\x00\x2a\x00\x03abc" + b"BODY"
    header, body = parse_request_header(frame)
    assert (header.api_key, header.api_version, header.correlation_id) == (3, 8, 42)
    assert header.client_id == "abc"
    assert bytes(body._take(body.remaining())) == b"BODY"


def test_response_frame_has_size_and_correlation_id() -> None:
    assert frame_response(7, b"xy") == b"\x00\x00\x00\x06\x00\x00\x00\x07xy"


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x00", b"\x00\x05ab", b"\xff\xfe", b"\x00\x00\x00\x05\x00"],
    ids=["empty", "short-int16", "short-string", "negative-length", "short-array"],
)
def test_reader_rejects_truncated_input(bad: bytes) -> None:
    def decode() -> None:
        r = Reader(bad)
        r.string()
        r.array(lambda r: r.int32())

    with pytest.raises(DecodeError):
        decode()


def _aiokafka_batch(compression: int, n: int = 3, producer_id: int = -1) -> bytes:
    b = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=0,
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=0 if producer_id >= 0 else -1,
        batch_size=1 << 20,
    )
    for i in range(n):
        b.append(i, timestamp=1000 + i, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[])
    return bytes(b.build())


@pytest.mark.parametrize(
    "compression", [0, 1, 2, 3, 4], ids=["none", "gzip", "snappy", "lz4", "zstd"]
)
def test_batch_from_aiokafka_validates_and_decodes(compression: int) -> None:
    batch = _aiokafka_batch(compression)
    h = records.validate(batch)
    assert (h.record_count, h.last_offset_delta, h.compression) == (3, 2, compression)
    assert [(r.key, r.value) for r in records.iter_records(batch)] == [
        (b"k0", b"v0"),
        (b"k1", b"v1"),
        (b"k2", b"v2"),
    ]


def test_setting_base_offset_keeps_crc_valid() -> None:
    buf = bytearray(_aiokafka_batch(0))
    records.set_base_offset(buf, 12345)
    h = records.validate(buf)
    assert h.base_offset == 12345
    assert h.leader_epoch == 0


def test_log_append_time_rewrites_crc() -> None:
    buf = bytearray(_aiokafka_batch(0))
    records.set_log_append_time(buf, 99_999)
    h = records.validate(buf)
    assert h.max_timestamp == 99_999
    assert h.attributes & records.TIMESTAMP_TYPE_BIT


def test_flipped_bit_fails_crc() -> None:
    buf = bytearray(_aiokafka_batch(0))
    buf[-1] ^= 0x01
    with pytest.raises(DecodeError, match="crc"):
        records.validate(buf)


def test_encode_batch_round_trips_and_is_readable_by_aiokafka() -> None:
    from aiokafka.record.default_records import DefaultRecordBatch

    recs = [records.Record(0, 0, b"a", b"1"), records.Record(2, 5, b"b", None, (("h", b"x"),))]
    data = records.encode_batch(
        recs, base_offset=10, base_timestamp=100, max_timestamp=105, last_offset_delta=3
    )
    h = records.validate(data)
    assert (h.base_offset, h.last_offset, h.record_count) == (10, 13, 2)
    assert list(records.iter_records(data)) == recs
    theirs = DefaultRecordBatch(data)
    assert theirs.validate_crc()
    assert [(r.offset, r.key, r.value) for r in theirs] == [(10, b"a", b"1"), (12, b"b", None)]


def test_split_batches_rejects_trailing_garbage() -> None:
    batch = _aiokafka_batch(0)
    assert len(records.split_batches(batch + batch)) == 2
    with pytest.raises(DecodeError):
        records.split_batches(batch + b"\x00\x01")
