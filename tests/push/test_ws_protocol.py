"""GET /v1/ws against a real uvicorn server and real Redis: handshake, auth, protocol."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from push.records import decode_conflict, decode_receipt
from schemas.auth import mint_token
from schemas.generated.push_schema import HelloMessage
from schemas.messages import PROTOCOL_VERSION, SERVER_MESSAGE
from schemas.readmodel import entities_key
from schemas.settings import SharedSettings
from tests.processes import free_port
from tests.push.conftest import PushFactory
from tests.push.helpers import PushServer, messages, subscribe, until, wait_for
from tests.push.records import conflict, receipt, state


async def closed_code(ws: object, within: float = 5.0) -> int | None:
    """Read until the server closes; the close code."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()  # type: ignore[attr-defined]
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


async def test_ws_hello_carries_protocol_server_hlc_and_limits(push_server: PushServer) -> None:
    async with connect(push_server.url(client_id="dev-1")) as ws:
        (hello,) = await messages(ws)
    parsed = SERVER_MESSAGE.validate_python(hello)
    assert isinstance(parsed, HelloMessage)
    assert parsed.protocol == PROTOCOL_VERSION
    assert parsed.server_hlc.endswith("-push")
    assert parsed.limits.max_bps == push_server.settings.max_bps
    assert parsed.limits.idle_timeout_ms == 60_000


async def test_ws_token_in_bearer_subprotocol_is_accepted(push_server: PushServer) -> None:
    url = f"ws://127.0.0.1:{push_server.settings.port}/v1/ws"
    async with connect(url, subprotocols=["bearer", push_server.token()]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "bearer"
        (hello,) = await messages(ws)
        assert hello["type"] == "hello"


@pytest.mark.parametrize(
    "token",
    ["", "not-a-jwt", "expired", "wrong-secret"],
    ids=["missing", "garbage", "expired", "wrong-secret"],
)
async def test_ws_auth_failures_get_error_then_close_4501(
    push_server: PushServer, token: str
) -> None:
    if token == "expired":
        token = mint_token(push_server.shared, tenant="acme", user_id="a", now_s=1_000, ttl_s=1)
    elif token == "wrong-secret":
        other = SharedSettings(jwt_secret="another-secret-that-is-at-least-32-bytes!")  # type: ignore[arg-type]
        token = mint_token(other, tenant="acme", user_id="a")
    async with connect(push_server.url(token=token)) as ws:
        (err,) = await messages(ws)
        assert err["type"] == "error"
        assert err["code"] == "auth_failed"
        assert await closed_code(ws) == 4501
    assert push_server.metrics.connections_rejected["auth_failed"] == 1


async def test_ws_tenant_param_must_match_the_token(push_server: PushServer) -> None:
    async with connect(push_server.url(tenant="globex")) as ws:
        (err,) = await messages(ws)
        assert err["code"] == "tenant_forbidden"
        assert await closed_code(ws) == 4502
    async with connect(push_server.url(tenant="acme")) as ws:
        assert (await messages(ws))[0]["type"] == "hello"


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:5173", True),
        ("https://evil.example", False),
        ("SAME", True),
    ],
    ids=["listed", "foreign", "same-origin"],
)
async def test_ws_origin_allow_list(push_server: PushServer, origin: str, allowed: bool) -> None:
    if origin == "SAME":
        origin = f"http://127.0.0.1:{push_server.settings.port}"
    if allowed:
        async with connect(push_server.url(), origin=origin) as ws:  # type: ignore[arg-type]
            assert (await messages(ws))[0]["type"] == "hello"
    else:
        with pytest.raises(InvalidStatus) as err:
            async with connect(push_server.url(), origin=origin):  # type: ignore[arg-type]
                pass
        assert err.value.response.status_code == 403


async def test_ws_snapshot_from_redis_then_live_updates(
    push_server: PushServer, shared: SharedSettings
) -> None:
    redis = Redis.from_url(shared.redis_url or "")
    key = entities_key(shared.redis_prefix, "acme", "tasks")
    await redis.hset(key, mapping={"e1": state("e1", 3), "e2": state("e2", 1)})
    await redis.hset(entities_key(shared.redis_prefix, "globex", "tasks"), "x", state("x"))
    await redis.aclose()
    async with connect(push_server.url()) as ws:
        snap = await subscribe(ws)
        assert snap["resumed"] is False
        assert sorted((e["entity_id"], e["version"]) for e in snap["entities"]) == [
            ("e1", 3),
            ("e2", 1),
        ]
        push_server.publish(state("e1", 4), "e1")
        push_server.publish(state("x", 2, tenant="globex"), "x", tenant="globex")
        push_server.publish(state("n", 1, collection="notes"), "n", collection="notes")
        msg, _ = await until(ws, lambda m: m["type"] == "entity")
        assert (msg["state"]["entity_id"], msg["state"]["version"]) == ("e1", 4)
        assert msg["cursor"] == "v1:0=1,1=0"
        await ws.send('{"type":"ping"}')
        _pong, skipped = await until(ws, lambda m: m["type"] == "pong")
        assert skipped == []  # nothing from another tenant or collection


async def test_ws_concurrent_subscribes_beyond_the_redis_pool_all_get_snapshots(
    push_factory: PushFactory, shared: SharedSettings
) -> None:
    server = await push_factory(redis_max_connections=2)
    redis = Redis.from_url(shared.redis_url or "")
    key = entities_key(shared.redis_prefix, "acme", "tasks")
    await redis.hset(key, mapping={f"e{i}": state(f"e{i}", 1) for i in range(50)})
    await redis.aclose()

    async def snapshot_size() -> int:
        async with connect(server.url()) as ws:
            await messages(ws)  # hello
            await ws.send(orjson.dumps({"type": "subscribe", "collection": "tasks"}).decode())
            answer, _ = await until(ws, lambda m: m["type"] in ("snapshot", "error"), 15.0)
            assert answer["type"] == "snapshot", answer
            return len(answer["entities"])

    sizes = await asyncio.gather(*(snapshot_size() for _ in range(30)))
    assert sizes == [50] * 30
    assert server.metrics.subscribes["snapshot"] == 30
    assert server.metrics.client_frames_rejected["snapshot_unavailable"] == 0


async def test_ws_receipts_and_conflicts_reach_only_the_authoring_client(
    push_server: PushServer,
) -> None:
    alice_other = push_server.token(user="bob")
    async with (
        connect(push_server.url(client_id="dev-1")) as author,
        connect(push_server.url(client_id="dev-2")) as other_device,
        connect(push_server.url(client_id="dev-1", token=alice_other)) as other_user,
        connect(push_server.url(client_id="dev-1", token=push_server.token("globex"))) as other,
    ):
        for ws in (author, other_device, other_user, other):
            await messages(ws)  # hello
        push_server.hub.client_event(decode_receipt(b"acme/dev-1", receipt("op-1")))
        push_server.hub.client_event(decode_conflict(b"acme/tasks/e1", conflict("op-2")))
        got = [m["type"] for m in await messages(author)]
        if len(got) == 1:
            got += [m["type"] for m in await messages(author)]
        assert got == ["receipt", "conflict"]
        for ws in (other_device, other_user, other):
            await ws.send('{"type":"ping"}')
            assert await messages(ws) == [{"type": "pong"}]


BAD_FRAMES = {
    "not-json": ("{nope", "bad_json"),
    "unknown-type": ('{"type":"shout"}', "unknown_type"),
    "no-type": ("[1,2]", "unknown_type"),
    "bad-collection": ('{"type":"subscribe","collection":"Bad Name"}', "invalid_message"),
    "extra-field": ('{"type":"ping","x":1}', "invalid_message"),
    "binary": (b'{"type":"ping"}', "binary_frame"),
}


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_ws_malformed_frame_gets_error_and_connection_stays(
    push_server: PushServer, frame: str | bytes, code: str
) -> None:
    async with connect(push_server.url()) as ws:
        await messages(ws)
        await ws.send(frame)
        (err,) = await messages(ws)
        assert err["type"] == "error"
        assert err["code"] == code
        await ws.send('{"type":"ping"}')
        assert await messages(ws) == [{"type": "pong"}]
    assert push_server.metrics.client_frames_rejected[code] == 1


async def test_ws_repeated_bad_frames_close_as_protocol_violation(
    push_factory: PushFactory,
) -> None:
    server = await push_factory(max_bad_frames=2)
    async with connect(server.url()) as ws:
        await messages(ws)
        for _ in range(3):
            await ws.send("{nope")
        assert await closed_code(ws) == 4500


async def test_ws_oversized_frame_closes_4500(push_factory: PushFactory) -> None:
    server = await push_factory(max_frame_bytes=1024)
    async with connect(server.url()) as ws:
        await messages(ws)
        await ws.send('{"type":"ping","pad":"' + "x" * 2000 + '"}')
        err, _ = await until(ws, lambda m: m["type"] == "error")
        assert err["code"] == "frame_too_large"
        assert await closed_code(ws) == 4500


async def test_ws_too_frequent_frames_close_4500(push_factory: PushFactory) -> None:
    server = await push_factory(max_client_messages_per_s=5)
    async with connect(server.url()) as ws:
        await messages(ws)
        for _ in range(30):
            await ws.send('{"type":"ping"}')
        err, _ = await until(ws, lambda m: m["type"] == "error")
        assert err["code"] == "rate_limited"
        assert await closed_code(ws) == 4500
    assert server.metrics.closes["protocol_violation"] == 1


async def test_ws_idle_connection_closes_4001_and_ping_keeps_it(push_factory: PushFactory) -> None:
    server = await push_factory(
        idle_timeout_s=0.4, sweep_interval_s=0.02, max_client_messages_per_s=100_000
    )
    async with connect(server.url()) as idle, connect(server.url()) as pinging:
        await messages(idle)
        await messages(pinging)
        idle_closed = asyncio.create_task(closed_code(idle))
        pings = 0
        while not idle_closed.done():  # keep the other one busy until the idle one is closed
            await pinging.send('{"type":"ping"}')
            assert await messages(pinging) == [{"type": "pong"}]
            pings += 1
        assert await idle_closed == 4001
        await pinging.send('{"type":"ping"}')
        assert await messages(pinging) == [{"type": "pong"}]
    assert pings > 1
    assert server.metrics.closes["idle_timeout"] == 1


async def test_ws_max_connections_closes_4003(push_factory: PushFactory) -> None:
    server = await push_factory(max_connections=1)
    async with connect(server.url()) as first:
        await messages(first)
        async with connect(server.url()) as second:
            (err,) = await messages(second)
            assert err["code"] == "try_again_later"
            assert await closed_code(second) == 4003


async def test_ws_too_many_subscriptions_is_an_error(push_factory: PushFactory) -> None:
    server = await push_factory(max_subscriptions=1)
    async with connect(server.url()) as ws:
        await messages(ws)
        await subscribe(ws, "tasks")
        await ws.send('{"type":"subscribe","collection":"notes"}')
        err, _ = await until(ws, lambda m: m["type"] == "error")
        assert err["code"] == "too_many_subscriptions"
        await ws.send('{"type":"unsubscribe","collection":"tasks"}')
        await subscribe(ws, "notes")
    await wait_for(lambda: server.metrics.subscriptions == 0, what="subscriptions gone")


async def test_ws_resume_inside_and_outside_the_buffer(push_factory: PushFactory) -> None:
    server = await push_factory(recent_buffer_size=3)
    async with connect(server.url()) as ws:
        await messages(ws)
        snap = await subscribe(ws)
        server.publish(state("e1", 1), "e1")
        msg, _ = await until(ws, lambda m: m["type"] == "entity")
        cursor = msg["cursor"]
    for v in range(2, 4):  # missed while away, still buffered
        server.publish(state("e1", v), "e1")
    server.publish(state("e2", 1), "e2", partition=1)
    async with connect(server.url()) as ws:
        await messages(ws)
        resumed = await subscribe(ws, cursor=cursor)
        assert resumed["resumed"] is True
        assert sorted((e["entity_id"], e["version"]) for e in resumed["entities"]) == [
            ("e1", 3),
            ("e2", 1),
        ]
        too_old = await subscribe(ws, cursor=snap["cursor"])  # e1 v1 left the buffer
        assert too_old["resumed"] is False
        garbage = await subscribe(ws, cursor="not-a-cursor")
        assert garbage["resumed"] is False
    assert server.metrics.subscribes["resumed"] == 1
    assert server.metrics.subscribes["snapshot"] == 3


async def test_health_ready_and_metrics_endpoints(push_server: PushServer) -> None:
    async with connect(push_server.url()) as ws:
        await messages(ws)
        await subscribe(ws)
        push_server.publish(state("e1", 1), "e1")
        await until(ws, lambda m: m["type"] == "entity")
        async with httpx.AsyncClient(base_url=push_server.http) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = await http.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {"source": True, "redis": True}
            text = (await http.get("/metrics")).text
    assert "syncpipe_push_connections 1.0" in text
    assert "syncpipe_push_subscriptions 1.0" in text
    assert 'syncpipe_push_messages_sent_total{type="entity"} 1.0' in text
    assert 'syncpipe_push_messages_sent_total{type="snapshot"} 1.0' in text
    assert "syncpipe_push_end_to_end_seconds_count 1.0" in text


async def test_readyz_fails_when_redis_is_down(push_factory: PushFactory) -> None:
    nowhere = SharedSettings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    server = await push_factory(shared_settings=nowhere, redis_timeout_s=0.5)
    async with httpx.AsyncClient(base_url=server.http) as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] is False
    async with connect(server.url()) as ws:  # subscribe says so instead of failing silently
        await messages(ws)
        await ws.send(orjson.dumps({"type": "subscribe", "collection": "tasks"}).decode())
        err, _ = await until(ws, lambda m: m["type"] == "error")
        assert err["code"] == "snapshot_unavailable"
