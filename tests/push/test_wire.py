"""push/wire.py: pre-built frames parse as RFC 6455 frames; uvicorn sessions write directly."""

from __future__ import annotations

import asyncio
from collections.abc import Generator

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from push.wire import WireCache, direct_writer, text_frame
from tests.push.helpers import PushServer, messages, subscribe, wait_for
from tests.push.records import state


def parse(data: bytes) -> Frame:
    """Parse one server frame with websockets' own parser (the client side's)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser: Generator[None, None, Frame] = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
        assert reader.at_eof()  # nothing left over: exactly one frame
        return frame
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000], ids=lambda n: f"{n}-bytes")
def test_text_frame_is_one_final_unmasked_text_frame_at_every_length_encoding(size: int) -> None:
    payload = b"x" * size
    frame = parse(text_frame(payload))
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload


def test_wire_cache_reuses_the_frame_of_the_same_payload_object() -> None:
    cache = WireCache()
    payload = b'{"type":"pong"}'
    first = cache.frame(payload)
    assert cache.frame(payload) is first
    other = cache.frame(b'{"type":"pong"} ')
    assert other is not first
    assert parse(other).data == b'{"type":"pong"} '


def test_direct_writer_is_none_for_a_send_that_is_not_uvicorns_sansio_protocol() -> None:
    async def send(message: object) -> None:
        return None

    assert direct_writer(send) is None


async def test_uvicorn_sessions_write_fanout_frames_directly(push_server: PushServer) -> None:
    async with connect(push_server.url(client_id="dev-1")) as ws:
        (hello,) = await messages(ws)
        assert hello["type"] == "hello"
        await subscribe(ws)
        (writer,) = push_server.hub._writers.values()
        assert writer.write_frame is not None  # uvicorn's websockets-sansio: direct writes
        writes = 0
        direct = writer.write_frame

        def counting(frame: bytes) -> bool:
            nonlocal writes
            writes += 1
            return direct(frame)

        writer.write_frame = counting
        push_server.publish(state("e1", 1), "e1")
        push_server.publish(state("e2", 1), "e2")
        got = await messages(ws)
        while len(got) < 2:
            got += await messages(ws)
        assert [(m["type"], m["state"]["entity_id"]) for m in got] == [
            ("entity", "e1"),
            ("entity", "e2"),
        ]
        assert writes >= 1
        await ws.send(orjson.dumps({"type": "ping"}).decode())
        (pong,) = await messages(ws)
        assert pong == {"type": "pong"}
    await wait_for(lambda: not push_server.hub.connections, what="the session to end")


async def test_direct_writer_declines_once_the_client_has_closed(push_server: PushServer) -> None:
    async with connect(push_server.url(client_id="dev-1")) as ws:
        await messages(ws)
        (writer,) = push_server.hub._writers.values()
        write = writer.write_frame
        assert write is not None
        assert write(text_frame(b'{"type":"pong"}'))
        await ws.close()
    for _ in range(200):
        if not write(text_frame(b'{"type":"pong"}')):
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError("the direct writer still writes to a closed connection")
