"""The read-model write script keeps only newer versions, on a real Redis."""

from __future__ import annotations

import orjson
import redis

from schemas.readmodel import UPSERT_IF_NEWER, entities_key


def state(entity_id: str, version: int, title: str) -> bytes:
    return orjson.dumps({"entity_id": entity_id, "version": version, "fields": {"t": title}})


def test_upsert_if_newer_never_regresses_state(redis_server_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_server_url)
    upsert = client.register_script(UPSERT_IF_NEWER)
    key = entities_key(redis_prefix, "acme", "tasks")
    other = entities_key(redis_prefix, "acme", "notes")
    assert (
        upsert(keys=[key, other], args=["t1", 2, state("t1", 2, "b"), "n1", 1, state("n1", 1, "x")])
        == 2
    )
    # Older and equal versions (a replay, out-of-order delivery) are ignored.
    assert (
        upsert(keys=[key, key], args=["t1", 1, state("t1", 1, "a"), "t1", 2, state("t1", 2, "z")])
        == 0
    )
    assert orjson.loads(client.hget(key, "t1"))["fields"] == {"t": "b"}  # type: ignore[arg-type]
    assert upsert(keys=[key], args=["t1", 3, state("t1", 3, "c")]) == 1
    assert orjson.loads(client.hget(key, "t1"))["version"] == 3  # type: ignore[arg-type]
    assert client.hkeys(other) == [b"n1"]


def test_keys_are_per_tenant_and_collection() -> None:
    assert entities_key("p:", "acme", "tasks") == "p:rm:acme:tasks"
    assert entities_key("p:", "acme", "tasks") != entities_key("p:", "other", "tasks")
