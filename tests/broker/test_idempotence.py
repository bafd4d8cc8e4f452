"""Idempotent produce over the wire: retries deduplicated even across a restart, gaps
rejected with OUT_OF_ORDER_SEQUENCE_NUMBER; OffsetForLeaderEpoch answers the HW."""

from __future__ import annotations

import pytest

from broker.codec import records
from broker.codec.primitives import Writer
from tests.broker.wire import Wire, produce_body, read_produce_response

pytestmark = pytest.mark.timeout(60)


def _init_pid(w: Wire) -> tuple[int, int]:
    r = w.call(22, 1, Writer().nullable_string(None).int32(60_000).getvalue())
    r.int32()
    assert r.int16() == 0
    return r.int64(), r.int16()


def _batch(pid: int, epoch: int, seq: int, n: int = 2) -> bytes:
    recs = [records.Record(i, 0, b"k", f"s{seq + i}".encode()) for i in range(n)]
    return records.encode_batch(
        recs,
        base_offset=0,
        base_timestamp=1,
        max_timestamp=1,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
    )


def _produce(w: Wire, batch: bytes) -> tuple[int, int]:
    return read_produce_response(w.call(0, 8, produce_body("idem", 0, batch)), 8)


def test_idempotent_retry_after_restart_is_deduplicated_and_gaps_rejected(broker) -> None:
    w = Wire(broker.port)
    try:
        pid, epoch = _init_pid(w)
        assert _produce(w, _batch(pid, epoch, 0)) == (0, 0)
        assert _produce(w, _batch(pid, epoch, 2)) == (0, 2)
        assert _produce(w, _batch(pid, epoch, 2)) == (0, 2), "retry returns the original offset"
    finally:
        w.close()

    broker.restart(hard=True)

    w = Wire(broker.port)
    try:
        assert _produce(w, _batch(pid, epoch, 2)) == (0, 2), "deduplicated after kill -9"
        err, _ = _produce(w, _batch(pid, epoch, 7))
        assert err == 45, "OUT_OF_ORDER_SEQUENCE_NUMBER"
        assert _produce(w, _batch(pid, epoch, 4)) == (0, 4)
        new_pid, _ = _init_pid(w)
        assert new_pid > pid, "producer ids are never reused across restarts"

        body = Writer().int32(-1).int32(1).string("idem").int32(1)
        r = w.call(23, 3, body.int32(0).int32(0).int32(0).getvalue())
        r.int32()
        r.int32()
        assert r.string() == "idem"
        r.int32()
        assert (r.int16(), r.int32(), r.int32(), r.int64()) == (0, 0, 0, 6)
    finally:
        w.close()


def test_corrupt_batch_is_rejected_with_corrupt_message(wire) -> None:
    w = wire()
    bad = bytearray(_batch(-1, -1, -1))
    bad[-1] ^= 0xFF
    err, _ = _produce(w, bytes(bad))
    assert err == 2, "CORRUPT_MESSAGE"
    assert _produce(w, _batch(-1, -1, -1)) == (0, 0), "connection still usable"
