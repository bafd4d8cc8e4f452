"""Reading a collection's current state from the Redis read model (for full snapshots).

The read model (:mod:`schemas.readmodel`) is one hash per tenant and collection, field =
entity id, value = EntityState JSON, written by the streams ``materialize`` agent. It is
read with HSCAN so a large collection never blocks Redis. Values that do not look like an
EntityState of that collection are skipped and counted.
"""

from __future__ import annotations

from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from push.errors import SnapshotUnavailableError
from push.hub import States
from push.metrics import PushMetrics
from schemas.readmodel import entities_key


class SnapshotReader:
    """Reads ``entity_id -> (version, state JSON)`` of one collection."""

    def __init__(self, redis: Redis, prefix: str, scan_count: int, metrics: PushMetrics) -> None:
        self.redis = redis
        self.prefix = prefix
        self.scan_count = scan_count
        self.metrics = metrics

    async def read(self, tenant: str, collection: str) -> States:
        key = entities_key(self.prefix, tenant, collection)
        out: States = {}
        try:
            async for field, value in self.redis.hscan_iter(key, count=self.scan_count):
                state = _state(value, tenant, collection)
                if state is None:
                    self.metrics.records_invalid[("readmodel", "schema")] += 1
                    continue
                entity_id = field.decode() if isinstance(field, bytes) else str(field)
                out[entity_id] = state
        except RedisError as exc:
            raise SnapshotUnavailableError(f"read model unavailable: {exc}") from exc
        return out


def _state(value: Any, tenant: str, collection: str) -> tuple[int, bytes] | None:
    raw = value if isinstance(value, bytes) else str(value).encode()
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return None
    if doc.get("tenant") != tenant or doc.get("collection") != collection:
        return None
    return version, raw
