"""Helpers of the ingest tests: op builders, a consumer, the app handle."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from ingest.settings import IngestSettings
from schemas.auth import mint_token
from schemas.settings import SharedSettings
from tests.processes import wait_until


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    wait_until(predicate, timeout=timeout, what=what)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def hlc(client_id: str, wall_ms: int | None = None, counter: int = 0) -> str:
    return f"{now_ms() if wall_ms is None else wall_ms:015d}-{counter:04x}-{client_id}"


def make_op(
    op_id: str | None = None,
    *,
    client_id: str = "phone-1",
    collection: str = "tasks",
    entity_id: str | None = None,
    kind: str = "upsert",
    fields: dict[str, Any] | None = None,
    wall_ms: int | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "op_id": op_id or uuid.uuid4().hex,
        "client_id": client_id,
        "collection": collection,
        "entity_id": entity_id or f"e-{uuid.uuid4().hex[:8]}",
        "kind": kind,
        "hlc": hlc(client_id, wall_ms),
    }
    if kind == "upsert":
        op["fields"] = fields if fields is not None else {"title": "buy milk", "done": False}
    return op


@dataclass
class Ingest:
    """A running ingest app and an HTTP client for it."""

    app: Any
    client: httpx.AsyncClient
    settings: IngestSettings
    shared: SharedSettings
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, tenant: str = "acme", user_id: str = "alice") -> str:
        key = f"{tenant}/{user_id}"
        if key not in self.tokens:
            self.tokens[key] = mint_token(self.shared, tenant=tenant, user_id=user_id)
        return self.tokens[key]

    def auth(self, tenant: str = "acme", user_id: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, user_id)}"}

    async def post_ops(self, ops: list[Any], tenant: str = "acme") -> httpx.Response:
        return await self.client.post("/v1/ops", json={"ops": ops}, headers=self.auth(tenant))

    async def consume(self, n: int, within_s: float = 15.0) -> list[Any]:
        """The first ``n`` records of the ops topic (waits for them with a deadline)."""
        return await consume(self.shared.kafka_bootstrap, self.shared.topics.ops, n, within_s)


async def consume(bootstrap: str, topic: str, n: int, within_s: float = 15.0) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[Any] = []
    try:
        async with asyncio.timeout(within_s):
            while len(out) < n:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    out.extend(records)
        if n == 0:
            return out
        # Anything beyond n would be a double write: look a little longer for it.
        extra = await consumer.getmany(timeout_ms=300)
        for records in extra.values():
            out.extend(records)
    finally:
        await consumer.stop()
    return out


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, within_s: float = 15.0, every_s: float = 0.02
) -> None:
    """Await ``check()`` until it is true, failing after ``within_s``."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within_s} s waiting for {what}")
        await asyncio.sleep(every_s)
