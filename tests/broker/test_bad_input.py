"""Bad input never crashes the broker: malformed frames, unknown keys and versions,
oversized requests and clients vanishing mid-request get an error or a closed
connection; hypothesis fuzzes the decoders and random bytes hit the socket."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.api import HANDLERS
from broker.api.registry import RequestContext
from broker.codec import records
from broker.codec.headers import RequestHeader
from broker.codec.primitives import Reader, Writer
from broker.errors import DecodeError
from broker.server import Broker
from broker.settings import BrokerSettings
from tests.broker.wire import Wire

pytestmark = pytest.mark.timeout(120)


def _frame(api_key: int, version: int, body: bytes, corr: int = 1) -> bytes:
    head = Writer().int16(api_key).int16(version).int32(corr).nullable_string("bad")
    data = head.getvalue() + body
    return struct.pack(">i", len(data)) + data


def _still_serves(port: int) -> None:
    w = Wire(port)
    try:
        r = w.call(18, 2, b"")
        assert r.int16() == 0
    finally:
        w.close()


@pytest.mark.parametrize(
    "frame",
    [
        _frame(99, 0, b""),
        _frame(0, 2, b"\x00" * 20),
        _frame(1, 12, b"\x00" * 40),
        _frame(3, 9, b""),
        _frame(0, 8, b"\x00\x01"),
        _frame(3, 1, b"\x00\x00\x00\x05\x00\x02ab"),
        struct.pack(">i", 3) + b"abc",
        struct.pack(">i", -5),
    ],
    ids=[
        "unknown-key",
        "produce-v2-unsupported",
        "fetch-v12-unsupported",
        "metadata-v9-unsupported",
        "truncated-produce",
        "array-count-beyond-frame",
        "frame-shorter-than-header",
        "negative-size",
    ],
)
def test_bad_frame_closes_only_that_connection(broker, frame: bytes) -> None:
    w = Wire(broker.port)
    bystander = Wire(broker.port)
    try:
        w.sock.sendall(frame)
        assert w.closed_by_peer()
        assert bystander.call(18, 0, b"").int16() == 0, "other connections unaffected"
    finally:
        w.close()
        bystander.close()
    _still_serves(broker.port)
    assert broker.alive()


def test_oversized_request_is_refused_before_reading_it(broker_factory) -> None:
    b = broker_factory(env={"SYNCPIPE_BROKER_MAX_REQUEST_BYTES": str(1024 * 1024)})
    w = Wire(b.port)
    try:
        w.sock.sendall(struct.pack(">i", 200 * 1024 * 1024) + b"\x00\x00")
        assert w.closed_by_peer()
    finally:
        w.close()
    assert "closing connection" in b.log()
    _still_serves(b.port)


def test_client_disconnecting_mid_request_leaves_broker_healthy(broker) -> None:
    for cut in (2, 6, 30):
        s = socket.create_connection(("127.0.0.1", broker.port))
        s.sendall(_frame(3, 8, Writer().int32(-1).boolean(True).getvalue())[:cut])
        s.close()
    w = Wire(broker.port)
    w.send(1, 11, _fetch_body("nope", wait_ms=5000))  # a parked long-poll, then vanish
    w.close()
    _still_serves(broker.port)
    assert broker.alive()


def _fetch_body(topic: str, wait_ms: int) -> bytes:
    w = Writer().int32(-1).int32(wait_ms).int32(1).int32(1 << 20).int8(0).int32(0).int32(-1)
    w.int32(1).string(topic).int32(1).int32(0).int32(-1).int64(0).int64(-1).int32(1 << 20)
    return w.int32(0).string("").getvalue()


def test_socket_fuzz_random_bytes_and_truncated_frames(broker) -> None:
    rng = random.Random(1234)
    for _ in range(150):
        s = socket.create_connection(("127.0.0.1", broker.port))
        s.settimeout(2)
        kind = rng.randrange(3)
        if kind == 0:
            payload = os.urandom(rng.randrange(1, 300))
        else:
            key = rng.choice(sorted(HANDLERS))
            api = HANDLERS[key]
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
            payload = _frame(key, rng.randint(api.min_version, api.max_version), body)
            if kind == 2:
                payload = payload[: rng.randrange(1, len(payload))]
        with contextlib.suppress(OSError):
            s.sendall(payload)
        s.close()
    _still_serves(broker.port)
    assert broker.alive()
    assert "connection crashed" not in broker.log()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=300))
def test_record_decoders_raise_only_decode_error(data: bytes) -> None:
    try:
        for batch in records.split_batches(data):
            records.validate(batch)
            list(records.iter_records(batch))
    except DecodeError:
        pass
    with contextlib.suppress(DecodeError):
        list(records.iter_records(b"\x00" * 21 + data))


def test_handlers_on_fuzzed_bodies_answer_or_raise_decode_error(tmp_path: Path) -> None:
    """Every handler, every version: random bodies yield a response or a DecodeError."""
    broker = Broker(
        BrokerSettings(data_dir=tmp_path / "fuzz", port=0, metrics_port=0, fsync="never")
    )
    broker.cluster.load()
    broker.offsets.load()
    loop = asyncio.new_event_loop()

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(sorted(HANDLERS)), st.data())
    def check(key: int, data: st.DataObject) -> None:
        api = HANDLERS[key]
        version = data.draw(st.integers(api.min_version, api.max_version))
        body = data.draw(st.binary(max_size=200))
        ctx = RequestContext(broker.state, RequestHeader(key, version, 1, "f"), "h")
        with contextlib.suppress(DecodeError, TimeoutError):
            loop.run_until_complete(asyncio.wait_for(api.fn(ctx, Reader(body)), 0.05))

    try:
        check()
    finally:
        loop.close()
        broker.offsets.close()
        broker.cluster.close()
