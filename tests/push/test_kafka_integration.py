"""End to end through the log: the session's Kafka (``SYNCPIPE_TEST_KAFKA``), records produced
with aiokafka straight to the entities/conflicts/receipts topics, ``python -m push`` as a
process, real Redis and real WebSocket clients. (The streams pipeline that normally produces
these records is not involved: the tests play its part.)
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from schemas.auth import mint_token
from schemas.readmodel import entities_key
from schemas.settings import SharedSettings
from schemas.topics import Topics
from tests.kafka_modes import KafkaUnderTest
from tests.push.helpers import messages, subscribe, until
from tests.push.processes import Process, start_push
from tests.push.records import conflict, entity_key, receipt, state

pytestmark = pytest.mark.timeout(120)

PARTITIONS = 2


@pytest.fixture(scope="module")
def broker(kafka: KafkaUnderTest) -> str:
    return kafka.bootstrap


@pytest.fixture(scope="module")
def topics() -> Topics:
    return Topics(f"pt{uuid.uuid4().hex[:8]}.")


@pytest.fixture(scope="module")
def push_proc(
    broker: str,
    topics: Topics,
    redis_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Process, int]]:
    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker)
        await admin.start()
        try:
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=PARTITIONS, replication_factor=1)
                    for t in (topics.entities, topics.conflicts, topics.receipts)
                ]
            )
        finally:
            await admin.close()
        # history from before push starts: cursors older than it cannot be resumed
        producer = AIOKafkaProducer(bootstrap_servers=broker)
        await producer.start()
        try:
            for p in range(PARTITIONS):
                raw = state(f"old{p}", tenant="history")
                key = entity_key(f"old{p}", "history")
                await producer.send_and_wait(topics.entities, raw, key=key, partition=p)
        finally:
            await producer.stop()

    asyncio.run(create())
    env = {
        "SYNCPIPE_KAFKA_BOOTSTRAP": broker,
        "SYNCPIPE_TOPIC_PREFIX": topics.prefix,
        "SYNCPIPE_REDIS_URL": redis_server_url,
        "SYNCPIPE_REDIS_PREFIX": "pushkafka:",
        "SYNCPIPE_PUSH_MAX_BPS": str(4 * 1024 * 1024),
        "SYNCPIPE_PUSH_BURST_BYTES": str(512 * 1024),
        "SYNCPIPE_PUSH_FETCH_MAX_WAIT_MS": "10",
    }
    proc, port = start_push(env, tmp_path_factory.mktemp("push-logs"))
    yield proc, port
    proc.stop()


@pytest.fixture
async def producer(broker: str) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=broker, acks=1, linger_ms=0)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
def tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def ws_url(port: int, tenant: str, user: str = "alice", **params: str) -> str:
    token = mint_token(SharedSettings(), tenant=tenant, user_id=user)
    return f"ws://127.0.0.1:{port}/v1/ws?{urlencode({'token': token, **params})}"


def now_ms() -> int:
    return int(time.time() * 1000)


async def metrics_text(port: int) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{port}/metrics")).text


def metric(text: str, line_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def send_state(
    producer: AIOKafkaProducer, topics: Topics, tenant: str, eid: str, version: int, **kw: Any
) -> None:
    raw = state(eid, version, tenant=tenant, received_at_ms=now_ms(), **kw)
    await producer.send_and_wait(topics.entities, raw, key=entity_key(eid, tenant))


async def test_kafka_snapshot_then_live_entity_updates(
    push_proc: tuple[Process, int],
    producer: AIOKafkaProducer,
    topics: Topics,
    tenant: str,
    redis_server_url: str,
) -> None:
    _, port = push_proc
    redis = Redis.from_url(redis_server_url)
    await redis.hset(
        entities_key("pushkafka:", tenant, "tasks"), "e1", state("e1", 2, tenant=tenant)
    )
    await redis.aclose()
    async with connect(ws_url(port, tenant)) as ws:
        await messages(ws)
        snap = await subscribe(ws)
        assert [(e["entity_id"], e["version"]) for e in snap["entities"]] == [("e1", 2)]
        await send_state(producer, topics, tenant, "e1", 3)
        await send_state(producer, topics, tenant, "e2", 1)
        got: dict[str, int] = {}
        while len(got) < 2:
            for m in await messages(ws):
                if m["type"] == "entity":
                    got[m["state"]["entity_id"]] = m["state"]["version"]
                    assert m["cursor"].startswith("v1:0=")
        assert got == {"e1": 3, "e2": 1}
    text = await metrics_text(port)
    assert metric(text, 'syncpipe_push_records_total{topic="entities"}') >= 2
    assert metric(text, "syncpipe_push_end_to_end_seconds_count") >= 2


async def test_kafka_receipts_and_conflicts_reach_only_the_author(
    push_proc: tuple[Process, int], producer: AIOKafkaProducer, topics: Topics, tenant: str
) -> None:
    _, port = push_proc
    async with (
        connect(ws_url(port, tenant, client_id="dev-1")) as author,
        connect(ws_url(port, tenant, client_id="dev-2")) as other,
    ):
        await messages(author)
        await messages(other)
        r = receipt("op-1", tenant=tenant, received_at_ms=now_ms())
        await producer.send_and_wait(topics.receipts, r, key=f"{tenant}/dev-1".encode())
        c = conflict("op-2", tenant=tenant, received_at_ms=now_ms())
        await producer.send_and_wait(topics.conflicts, c, key=entity_key("e1", tenant))
        first, _ = await until(author, lambda m: m["type"] == "receipt")
        assert first["receipt"]["op_id"] == "op-1"
        second, _ = await until(author, lambda m: m["type"] == "conflict")
        assert second["conflict"]["op_id"] == "op-2"
        await other.send('{"type":"ping"}')
        assert await messages(other) == [{"type": "pong"}]


async def test_kafka_bad_records_are_counted_and_skipped(
    push_proc: tuple[Process, int], producer: AIOKafkaProducer, topics: Topics, tenant: str
) -> None:
    _, port = push_proc
    before = await metrics_text(port)
    async with connect(ws_url(port, tenant)) as ws:
        await messages(ws)
        await subscribe(ws)
        await producer.send_and_wait(topics.entities, b"{not json", key=entity_key("e1", tenant))
        await producer.send_and_wait(
            topics.entities, state("e1", tenant="other"), key=entity_key("e1", tenant)
        )
        await producer.send_and_wait(topics.receipts, b"[]", key=f"{tenant}/dev-1".encode())
        await send_state(producer, topics, tenant, "e1", 1)
        msg, skipped = await until(ws, lambda m: m["type"] == "entity")
        assert msg["state"]["version"] == 1
        assert skipped == []
    after = await metrics_text(port)
    schema = 'syncpipe_push_records_invalid_total{reason="schema",topic="entities"}'
    mismatch = 'syncpipe_push_records_invalid_total{reason="key_mismatch",topic="entities"}'
    receipts = 'syncpipe_push_records_invalid_total{reason="schema",topic="receipts"}'
    assert metric(after, schema) == metric(before, schema) + 1
    assert metric(after, mismatch) == metric(before, mismatch) + 1
    assert metric(after, receipts) == metric(before, receipts) + 1


async def test_kafka_resume_after_reconnect_inside_and_outside_the_buffer(
    push_proc: tuple[Process, int], producer: AIOKafkaProducer, topics: Topics, tenant: str
) -> None:
    _, port = push_proc
    async with connect(ws_url(port, tenant)) as ws:
        await messages(ws)
        await subscribe(ws)
        await send_state(producer, topics, tenant, "e1", 1)
        msg, _ = await until(ws, lambda m: m["type"] == "entity")
        cursor = msg["cursor"]
    for v in (2, 3):
        await send_state(producer, topics, tenant, "e1", v)
    await send_state(producer, topics, tenant, "e2", 1)
    async with connect(ws_url(port, tenant)) as ws:
        await messages(ws)
        resumed = await subscribe(ws, cursor=cursor)
        assert resumed["resumed"] is True
        versions = {e["entity_id"]: e["version"] for e in resumed["entities"]}
        if versions != {"e1": 3, "e2": 1}:  # the replica may not have consumed them all yet
            live: dict[str, int] = dict(versions)
            while live != {"e1": 3, "e2": 1}:
                for m in await messages(ws):
                    if m["type"] == "entity":
                        live[m["state"]["entity_id"]] = m["state"]["version"]
        before_start = "v1:" + ",".join(f"{p}=0" for p in range(PARTITIONS))
        outside = await subscribe(ws, cursor=before_start)  # older than this replica
        assert outside["resumed"] is False


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def stream_latencies(
    fast: ClientConnection,
    producer: AIOKafkaProducer,
    topics: Topics,
    tenant: str,
    *,
    count: int,
    rate: float,
    pad: int = 1500,
) -> list[float]:
    """Produce ``count`` states at ``rate``/s; the fast client's e2e latencies (ms)."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def read() -> None:
        while len(latencies) < count:
            for m in await messages(fast, within=20):
                if m["type"] == "entity":
                    latencies.append(time.time() * 1000 - m["state"]["received_at_ms"])
        done.set()

    reader = asyncio.create_task(read())
    start = time.monotonic()
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        raw = state(f"e{i}", 1, tenant=tenant, received_at_ms=now_ms(), pad=pad)
        await producer.send(topics.entities, raw, key=entity_key(f"e{i}", tenant))
    await asyncio.wait_for(done.wait(), 30)
    await reader
    return latencies


def stalled_socket() -> socket.socket:
    """A client socket with a tiny receive buffer, for a client that never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return sock


async def test_kafka_slow_clients_do_not_delay_a_fast_client(
    push_proc: tuple[Process, int], producer: AIOKafkaProducer, topics: Topics, tenant: str
) -> None:
    """Fast client's end-to-end p99 with 5 stalled subscribers <= 2x its unloaded p99.

    The unloaded p99 is floored at 10 ms: on a shared 2-core machine the p99 of the same
    unloaded run varies between ~4 and ~12 ms, which would make a bare 2x ratio flaky.
    The test process's own cyclic GC is paused while latencies are sampled (its pauses
    are client-side noise, not push latency). A round (unloaded, then loaded) is repeated
    up to 3 times when its ratio misses, so one noisy p99 does not fail the test while a
    real slowdown, present in every round, still does.
    """
    _, port = push_proc
    rounds: list[tuple[float, float]] = []
    gc.collect()
    gc.disable()
    try:
        async with connect(ws_url(port, tenant), max_size=None) as fast:
            await messages(fast)
            await subscribe(fast)
            await stream_latencies(fast, producer, topics, tenant, count=20, rate=100)  # warm-up
            for _ in range(3):
                unloaded, loaded = await _slow_vs_fast_round(fast, port, producer, topics, tenant)
                rounds.append((unloaded, loaded))
                if loaded <= 2 * max(unloaded, 10.0):
                    break
    finally:
        gc.enable()
    print("fast client e2e p99 (unloaded ms, with 5 slow ms) per round:", rounds)
    unloaded, loaded = rounds[-1]
    assert loaded <= 2 * max(unloaded, 10.0), rounds


async def _slow_vs_fast_round(
    fast: ClientConnection, port: int, producer: AIOKafkaProducer, topics: Topics, tenant: str
) -> tuple[float, float]:
    """p99 e2e of the fast client alone, then beside 5 stalled subscribers."""
    unloaded = await stream_latencies(fast, producer, topics, tenant, count=500, rate=200)
    slow: list[ClientConnection] = []
    for _ in range(5):
        sock = stalled_socket()
        sock.connect(("127.0.0.1", port))
        ws = await connect(ws_url(port, tenant), sock=sock, max_queue=1)
        await ws.send('{"type":"subscribe","collection":"tasks"}')
        slow.append(ws)  # never read from again
    try:
        # ~6 MB to every subscriber: more than the slow ones' socket buffers hold
        await stream_latencies(fast, producer, topics, tenant, count=100, rate=100, pad=60_000)
        sent = 'syncpipe_push_messages_sent_total{type="entity"}'
        before = metric(await metrics_text(port), sent)
        loaded = await stream_latencies(fast, producer, topics, tenant, count=500, rate=200)
        after = metric(await metrics_text(port), sent)
    finally:
        for ws in slow:
            ws.transport.abort()
    assert after - before < 500 * 6, "the slow clients were not stalled"
    return p99(unloaded), p99(loaded)


async def test_kafka_broker_crash_and_restart_leaves_no_gap(
    tmp_path: Path, redis_server_url: str, stoppable_kafka: KafkaUnderTest
) -> None:
    """The broker is killed (-9) and restarted on the same port and data: push's consumer
    reconnects and continues from where it was, so the subscriber gets every state."""
    bootstrap = stoppable_kafka.bootstrap
    topics = Topics(f"rs{uuid.uuid4().hex[:8]}.")
    push_proc = None
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics(
            [
                NewTopic(t, num_partitions=1, replication_factor=1)
                for t in (topics.entities, topics.conflicts, topics.receipts)
            ]
        )
        await admin.close()
        env = {
            "SYNCPIPE_KAFKA_BOOTSTRAP": bootstrap,
            "SYNCPIPE_TOPIC_PREFIX": topics.prefix,
            "SYNCPIPE_REDIS_URL": redis_server_url,
            "SYNCPIPE_REDIS_PREFIX": "pushrestart:",
        }
        push_proc, port = await asyncio.to_thread(start_push, env, tmp_path)
        async with connect(ws_url(port, "acme")) as ws:
            await messages(ws)
            await subscribe(ws)
            for version, restart in ((1, True), (2, False)):
                producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
                await producer.start()
                try:
                    await send_state(producer, topics, "acme", "e1", version)
                finally:
                    await producer.stop()
                msg, _ = await until(ws, lambda m: m["type"] == "entity", within=30)
                assert msg["state"]["version"] == version
                if restart:
                    await asyncio.to_thread(stoppable_kafka.restart, hard=True)
    finally:
        if push_proc is not None:
            push_proc.stop()
