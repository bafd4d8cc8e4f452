"""Per-connection byte limit, conflation and overload over a real socket (uvicorn, Redis)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.push.conftest import PushFactory
from tests.push.helpers import PushServer, messages, subscribe, until, wait_for
from tests.push.records import state


async def publish_stream(
    server: PushServer, *, entities: int, updates: int, per_tick: int, versions: dict[str, int]
) -> None:
    """Publish ``updates`` entity states round-robin, ``per_tick`` per event-loop turn."""
    for n in range(updates):
        eid = f"e{n % entities}"
        versions[eid] = versions.get(eid, 0) + 1
        server.publish(
            state(eid, versions[eid], received_at_ms=int(time.time() * 1000), pad=200),
            eid,
            partition=n % 2,
        )
        if n % per_tick == per_tick - 1:
            await asyncio.sleep(0.001)  # let the server's writers run, like a real fetch loop


async def test_ws_byte_limit_holds_and_latest_state_of_every_entity_arrives(
    push_factory: PushFactory,
) -> None:
    max_bps, burst = 20_000, 4_000
    server = await push_factory(max_bps=max_bps, burst_bytes=burst, overload_grace_s=60)
    received: list[tuple[float, int]] = []  # (monotonic time, payload bytes) per frame
    latest: dict[str, int] = {}
    versions: dict[str, int] = {}
    started = time.monotonic()  # before the connection exists: its bucket starts full later
    async with connect(server.url()) as ws:

        async def read() -> None:
            async for frame in ws:
                data = frame.encode() if isinstance(frame, str) else frame
                received.append((time.monotonic(), len(data)))
                doc = orjson.loads(data)
                for msg in doc["messages"] if doc["type"] == "batch" else [doc]:
                    if msg["type"] == "entity":
                        s = msg["state"]
                        latest[s["entity_id"]] = max(latest.get(s["entity_id"], 0), s["version"])

        reader = asyncio.create_task(read())
        await ws.send('{"type":"subscribe","collection":"tasks"}')
        await wait_for(lambda: server.metrics.subscriptions == 1, what="subscribed")
        # ~3,000 updates of 40 entities in ~1 s, each ~470 bytes: ~70x the byte budget
        await publish_stream(server, entities=40, updates=3_000, per_tick=10, versions=versions)
        await wait_for(lambda: latest == versions, within=15, what="latest state of every entity")
        reader.cancel()
    elapsed = received[-1][0] - started
    total = sum(n for _, n in received)
    assert total <= burst + max_bps * elapsed, (total, elapsed)
    m = server.metrics
    assert m.messages_conflated["entity_superseded"] > 1_000
    assert m.throttle_events >= 1
    assert m.disconnect_notices == {}
    assert m.sent_bytes == total


async def test_ws_sustained_overload_notices_after_grace_then_closes_4000_and_resumes(
    push_factory: PushFactory,
) -> None:
    grace = 0.6
    server = await push_factory(
        max_bps=5_000,
        burst_bytes=2_000,
        overload_grace_s=grace,
        sweep_interval_s=0.02,
        recent_buffer_size=100_000,
    )
    seen: list[dict[str, Any]] = []
    async with connect(server.url()) as ws:
        await messages(ws)
        await subscribe(ws)

        async def read() -> int | None:
            try:
                while True:
                    seen.extend(await messages(ws, within=10))
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd is not None else None

        reader = asyncio.create_task(read())
        first_publish = time.monotonic()
        n = 0
        while not reader.done() and time.monotonic() - first_publish < 5:
            for _ in range(10):  # distinct entities: conflation cannot absorb them
                server.publish(state(f"e{n}", 1, pad=200), f"e{n}")
                n += 1
            await asyncio.sleep(0.005)
        code = await reader
        closed_after = time.monotonic() - first_publish
    assert code == 4000
    assert closed_after >= grace
    notice = seen[-1]
    assert notice["type"] == "disconnect_notice"
    assert notice["reason"] == "overload"
    assert notice["retry_after_ms"] == server.settings.retry_after_ms
    delivered = [m for m in seen if m["type"] == "entity"]
    assert delivered, "some updates were delivered before the overload"
    assert notice["cursor"] == delivered[-1]["cursor"]
    assert server.metrics.disconnect_notices["overload"] == 1
    assert server.metrics.closes["overloaded"] == 1
    async with connect(server.url()) as ws:  # the client comes back with the cursor
        await messages(ws)
        resumed = await subscribe(ws, cursor=notice["cursor"])
    assert resumed["resumed"] is True
    got = {e["entity_id"] for e in resumed["entities"]}
    missed = {f"e{i}" for i in range(n)} - {m["state"]["entity_id"] for m in delivered}
    assert missed <= got  # everything not delivered before the notice is replayed


async def test_ws_stuck_client_is_dropped_after_grace_and_fast_client_unaffected(
    push_factory: PushFactory,
) -> None:
    """A client that stops reading fills its socket; after overload_grace_s the server
    gives up on it (its writer cannot even send the close, so it is abandoned after
    close_timeout_s) and frees it, while a reading client receives everything."""
    server = await push_factory(
        overload_grace_s=0.5,
        close_timeout_s=0.3,
        sweep_interval_s=0.02,
        max_bps=50_000_000,
        burst_bytes=5_000_000,
    )
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.settings.port))
    stuck = await connect(server.url(), sock=sock, max_queue=1)
    async with connect(server.url(), max_size=None) as fast:
        await messages(fast)
        await subscribe(fast)
        await stuck.send('{"type":"subscribe","collection":"tasks"}')
        await wait_for(lambda: server.metrics.subscriptions == 2, what="both subscribed")
        got = 0
        for i in range(120):  # ~7 MB: more than the stuck socket's buffers hold
            server.publish(state(f"e{i}", 1, pad=60_000), f"e{i}")
            for m in await messages(fast):
                got += m["type"] == "entity"
        while got < 120:
            got += sum(m["type"] == "entity" for m in await messages(fast))
        await wait_for(lambda: server.metrics.connections == 1, within=10, what="stuck dropped")
        assert server.metrics.disconnect_notices["overload"] == 1
        await fast.send('{"type":"ping"}')
        _pong, _ = await until(fast, lambda m: m["type"] == "pong")
    stuck.transport.abort()
