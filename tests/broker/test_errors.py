"""Kafka errors are response data; a Python exception in a handler closes only its
connection (checked in-process, with a handler that raises)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from broker.api import HANDLERS
from broker.api.registry import Api
from broker.codec.primitives import Writer
from broker.server import Broker
from broker.settings import BrokerSettings

pytestmark = pytest.mark.timeout(30)


def _create_body(name: str, partitions: int, replication: int, configs: dict[str, str]) -> bytes:
    w = Writer().int32(1).string(name).int32(partitions).int16(replication).int32(0)
    w.int32(len(configs))
    for k, v in configs.items():
        w.string(k).nullable_string(v)
    return w.int32(1000).boolean(False).getvalue()


@pytest.mark.parametrize(
    ("name", "partitions", "replication", "configs", "code"),
    [
        ("fine", 2, 1, {"cleanup.policy": "compact"}, 0),
        ("dup", 1, 1, {}, 36),
        ("bad name!", 1, 1, {}, 17),
        ("rf3", 1, 3, {}, 38),
        ("parts0", 0, 1, {}, 37),
        ("badcfg", 1, 1, {"cleanup.policy": "shred"}, 40),
        ("defaults", -1, -1, {}, 0),
    ],
    ids=[
        "ok",
        "already-exists",
        "invalid-name",
        "replication",
        "partitions",
        "config",
        "v4-defaults",
    ],
)
def test_create_topics_errors_are_response_data(wire, name, partitions, replication, configs, code):
    w = wire()
    if code == 36:
        w.call(19, 4, _create_body(name, 1, 1, {}))
    r = w.call(19, 4, _create_body(name, partitions, replication, configs))
    r.int32()
    assert r.int32() == 1
    assert r.string() == name
    assert r.int16() == code
    msg = r.nullable_string()
    assert (msg is None) == (code == 0)


def test_unknown_topic_and_partition_errors(wire) -> None:
    w = wire()
    body = Writer().int32(-1).int8(0).int32(1).string("missing").int32(1).int32(0).int32(-1)
    r = w.call(2, 5, body.int64(-1).getvalue())
    r.int32()
    r.int32()
    r.string()
    r.int32()
    assert (r.int32(), r.int16()) == (0, 3), "ListOffsets: UNKNOWN_TOPIC_OR_PARTITION"
    r = w.call(
        3,
        8,
        Writer().int32(1).string("bad/name").boolean(True).boolean(False).boolean(False).getvalue(),
    )
    r.int32()
    r.array(lambda r: (r.int32(), r.string(), r.int32(), r.nullable_string()))
    r.nullable_string()
    r.int32()
    assert r.int32() == 1
    assert (r.int16(), r.string()) == (17, "bad/name"), "Metadata: INVALID_TOPIC_EXCEPTION"


async def test_python_exception_in_handler_closes_only_that_connection(tmp_path: Path) -> None:
    async def explode(ctx, r):  # type: ignore[no-untyped-def]
        raise RuntimeError("handler bug")

    broker = Broker(BrokerSettings(data_dir=tmp_path / "d", port=0, metrics_port=0))
    await broker.start()
    saved = HANDLERS[16]
    HANDLERS[16] = Api(16, "list_groups", 0, 2, explode, False)
    try:
        port = broker.state.advertised_port

        async def call(key: int, version: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            head = Writer().int16(key).int16(version).int32(7).nullable_string("t").getvalue()
            writer.write(struct.pack(">i", len(head)) + head)
            try:
                size = await asyncio.wait_for(reader.read(4), 5)
                if not size:
                    return b""
                return size + await reader.readexactly(struct.unpack(">i", size)[0])
            finally:
                writer.close()
                await writer.wait_closed()

        assert await call(16, 2) == b"", "closed without a response"
        reply = await call(18, 2)
        assert reply[4:8] == struct.pack(">i", 7), "the broker still serves others"
    finally:
        HANDLERS[16] = saved
        await broker.stop()
