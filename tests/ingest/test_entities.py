"""GET /v1/collections/{collection}/entities: pages of the Redis read model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from schemas.generated.entity_state_schema import EntityState
from schemas.readmodel import UPSERT_IF_NEWER, entities_key
from tests.ingest.helpers import Ingest, hlc

pytestmark = pytest.mark.timeout(60)


def state(tenant: str, collection: str, entity_id: str, version: int = 1) -> dict[str, Any]:
    stamp = hlc("phone-1")
    return {
        "tenant": tenant,
        "collection": collection,
        "entity_id": entity_id,
        "version": version,
        "fields": {
            "title": {"value": f"task {entity_id}", "hlc": stamp, "client_id": "phone-1",
                      "op_id": f"op-{entity_id}"},
        },
        "deleted_hlc": None,
        "deleted_by": None,
        "deleted_op_id": None,
        "deleted": False,
        "last_op_id": f"op-{entity_id}",
        "received_at_ms": 1_700_000_000_000,
    }  # fmt: skip


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


async def seed(redis: Redis, prefix: str, tenant: str, collection: str, n: int) -> set[str]:
    """Write ``n`` entities the way the streams materializer does."""
    upsert = redis.register_script(UPSERT_IF_NEWER)
    key = entities_key(prefix, tenant, collection)
    ids = {f"{tenant}-e{i:04d}" for i in range(n)}
    for chunk in [sorted(ids)[i : i + 100] for i in range(0, n, 100)]:
        args: list[Any] = []
        for entity_id in chunk:
            args += [entity_id, 1, orjson.dumps(state(tenant, collection, entity_id))]
        await upsert(keys=[key] * len(chunk), args=args)
    return ids


async def pages(ingest: Ingest, tenant: str, collection: str, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await ingest.client.get(
            f"/v1/collections/{collection}/entities", params=params, headers=ingest.auth(tenant)
        )
        assert response.status_code == 200, response.text
        out.append(response.json())
        cursor = response.json()["cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination never ended")


async def test_pages_cover_the_collection_exactly(
    ingest: Ingest, redis: Redis, redis_prefix: str
) -> None:
    ids = await seed(redis, redis_prefix, "acme", "tasks", 300)
    got = await pages(ingest, "acme", "tasks", limit=40)
    assert len(got) > 3  # really paginated
    seen = [e["entity_id"] for page in got for e in page["entities"]]
    assert set(seen) == ids
    for page in got:
        for entity in page["entities"]:
            EntityState.model_validate(entity)
            assert entity["tenant"] == "acme"


async def test_tenant_cannot_read_another_tenants_entities(
    ingest: Ingest, redis: Redis, redis_prefix: str
) -> None:
    await seed(redis, redis_prefix, "acme", "tasks", 5)
    globex = await seed(redis, redis_prefix, "globex", "tasks", 3)
    seen = {
        e["entity_id"] for p in await pages(ingest, "globex", "tasks", 100) for e in p["entities"]
    }
    assert seen == globex
    assert await pages(ingest, "initech", "tasks", 100) == [{"entities": [], "cursor": None}]


async def test_unreadable_entries_are_skipped(
    ingest: Ingest, redis: Redis, redis_prefix: str
) -> None:
    ids = await seed(redis, redis_prefix, "acme", "notes", 2)
    await redis.hset(entities_key(redis_prefix, "acme", "notes"), "broken", b"{not json")
    seen = {
        e["entity_id"] for p in await pages(ingest, "acme", "notes", 100) for e in p["entities"]
    }
    assert seen == ids


@pytest.mark.parametrize(
    "query",
    ["cursor=abc", "cursor=-1", f"cursor={2**64}", "limit=0", "limit=501", "limit=many"],
    ids=["cursor-letters", "cursor-negative", "cursor-2^64", "limit-0", "limit-501", "limit-text"],
)
async def test_bad_paging_parameters_are_422_problems(ingest: Ingest, query: str) -> None:
    response = await ingest.client.get(
        f"/v1/collections/tasks/entities?{query}", headers=ingest.auth()
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_request"


async def test_empty_cursor_is_the_first_page(
    ingest: Ingest, redis: Redis, redis_prefix: str
) -> None:
    ids = await seed(redis, redis_prefix, "acme", "tasks", 3)
    response = await ingest.client.get(
        "/v1/collections/tasks/entities?cursor=&limit=10", headers=ingest.auth()
    )
    assert {e["entity_id"] for e in response.json()["entities"]} == ids


async def test_bad_collection_name_is_422(ingest: Ingest) -> None:
    response = await ingest.client.get("/v1/collections/Tasks/entities", headers=ingest.auth())
    assert response.status_code == 422
    assert "collection" in response.json()["detail"]
