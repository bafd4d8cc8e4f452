"""Writing entity states into the Redis read model, only ever forward.

Every write goes through :data:`schemas.readmodel.UPSERT_IF_NEWER` in batches: a state is
stored only when its version is newer than the stored one, atomically, so re-delivered,
replayed or out-of-order records never regress what readers see.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from schemas.readmodel import UPSERT_IF_NEWER, entities_key
from streams.errors import StreamsError


class ReadModelUnavailableError(StreamsError):
    """Redis did not take a batch; it is retried (the write is idempotent)."""

    retriable = True


class ReadModelWriter:
    """Batched, version-guarded upserts of EntityState JSON."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._script: Any = client.register_script(UPSERT_IF_NEWER)

    async def upsert(self, states: Iterable[bytes]) -> tuple[int, int]:
        """Offer states to the read model; return (written, offered)."""
        latest: dict[tuple[str, str], tuple[int, bytes]] = {}
        for raw in states:
            doc = orjson.loads(raw)
            rm_key = entities_key(self._prefix, doc["tenant"], doc["collection"])
            version = int(doc["version"])
            slot = (rm_key, doc["entity_id"])
            held = latest.get(slot)
            if held is None or version > held[0]:
                latest[slot] = (version, raw)
        if not latest:
            return 0, 0
        keys: list[str] = []
        args: list[Any] = []
        for (rm_key, entity_id), (version, raw) in latest.items():
            keys.append(rm_key)
            args.extend((entity_id, version, raw))
        try:
            written = await self._script(keys=keys, args=args)
        except RedisError as exc:
            raise ReadModelUnavailableError(f"read model write failed: {exc}") from exc
        return int(written), len(latest)
