"""Helpers of the push integration tests: an in-process uvicorn server, WS client reads.

:func:`serve_push` runs the app on the test's event loop with a fake source, so a test
can dispatch log events straight into the hub; the Kafka path is covered with the
embedded broker in ``test_kafka_integration.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

from push.app import create_app, uvicorn_config
from push.hub import Hub
from push.metrics import PushMetrics
from push.records import decode_entity
from push.settings import PushSettings
from schemas.auth import mint_token
from schemas.settings import SharedSettings
from tests.processes import free_port
from tests.push.records import entity_key


async def wait_for(
    predicate: Callable[[], bool], within: float = 10.0, what: str = "condition"
) -> None:
    """Wait until ``predicate()`` holds, checking every few ms, failing after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.005)


class FakeSource:
    """Ready at once, starting the hub at offset 0 of partitions 0 and 1; events are
    dispatched by the test."""

    def __init__(self, hub: Hub, metrics: PushMetrics) -> None:
        self.hub = hub
        self.ready = True

    async def run(self) -> None:
        self.hub.start({0: 0, 1: 0})
        await asyncio.Event().wait()


@dataclass
class PushServer:
    app: Starlette
    settings: PushSettings
    shared: SharedSettings
    offsets: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0})

    @property
    def hub(self) -> Hub:
        hub: Hub = self.app.state.hub
        return hub

    @property
    def metrics(self) -> PushMetrics:
        metrics: PushMetrics = self.app.state.metrics
        return metrics

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def token(self, tenant: str = "acme", user: str = "alice", ttl_s: int = 3600) -> str:
        return mint_token(self.shared, tenant=tenant, user_id=user, ttl_s=ttl_s)

    def url(self, *, token: str | None = None, **params: str) -> str:
        query = dict(params)
        query["token"] = self.token() if token is None else token
        return f"ws://127.0.0.1:{self.settings.port}/v1/ws?{urlencode(query)}"

    def publish(
        self,
        raw: bytes,
        entity_id: str,
        *,
        partition: int = 0,
        tenant: str = "acme",
        collection: str = "tasks",
    ) -> None:
        """Dispatch one entity record as the Kafka source would."""
        offset = self.offsets[partition]
        self.offsets[partition] = offset + 1
        ev = decode_entity(entity_key(entity_id, tenant, collection), raw)
        self.hub.entity(partition, offset, ev)


@asynccontextmanager
async def serve_push(
    settings: PushSettings,
    shared: SharedSettings,
    source_factory: Callable[[Hub, PushMetrics], Any] | None = FakeSource,
) -> AsyncIterator[PushServer]:
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": free_port()})
    app = create_app(settings, shared, source_factory=source_factory)
    server = uvicorn.Server(uvicorn_config(app, settings))
    task = asyncio.create_task(server.serve())
    try:
        await wait_for(lambda: server.started or task.done(), what="uvicorn to start")
        if task.done():
            task.result()
        yield PushServer(app, settings, shared)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def messages(ws: ClientConnection, within: float = 5.0) -> list[dict[str, Any]]:
    """The next frame's messages (a batch flattened)."""
    frame = await asyncio.wait_for(ws.recv(), within)
    doc = orjson.loads(frame)
    return list(doc["messages"]) if doc["type"] == "batch" else [doc]


async def until(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool], within: float = 5.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read until a message satisfies ``pred``; returns it and everything read before."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + within
    while True:
        for msg in await messages(ws, max(0.01, deadline - time.monotonic())):
            if pred(msg):
                return msg, seen
            seen.append(msg)


async def subscribe(
    ws: ClientConnection, collection: str = "tasks", cursor: str | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "subscribe", "collection": collection}
    if cursor is not None:
        frame["cursor"] = cursor
    await ws.send(orjson.dumps(frame).decode())
    snap, _ = await until(ws, lambda m: m["type"] == "snapshot")
    return snap
