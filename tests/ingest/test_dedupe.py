"""Op-id claims of ingest/dedupe.py on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ingest.dedupe import CLAIMED, IN_FLIGHT, Deduper, Written, dedupe_key
from ingest.errors import RedisUnavailableError
from tests.ingest.helpers import eventually
from tests.processes import free_port


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


def deduper(redis: Redis, prefix: str, claim_ttl_s: float = 30.0) -> Deduper:
    return Deduper(redis, prefix=prefix, claim_ttl_s=claim_ttl_s, ttl_s=3600, retry_after_s=1)


async def test_claim_commit_then_seen_as_written(redis: Redis, redis_prefix: str) -> None:
    d = deduper(redis, redis_prefix)
    me, other = Deduper.new_claim(), Deduper.new_claim()
    assert await d.claim("acme", ["a", "b"], me) == [CLAIMED, CLAIMED]
    assert await d.claim("acme", ["a", "b", "c"], other) == [IN_FLIGHT, IN_FLIGHT, CLAIMED]
    await d.commit("acme", [("a", Written(0, 41))])
    await d.release("acme", ["b"], me)
    assert await d.claim("acme", ["a", "b"], other) == [Written(0, 41), CLAIMED]
    assert await d.claim("other-tenant", ["a"], other) == [CLAIMED]
    assert 0 < await redis.pttl(dedupe_key(redis_prefix, "acme", "a")) <= 3_600_000


async def test_release_never_drops_someone_elses_claim(redis: Redis, redis_prefix: str) -> None:
    d = deduper(redis, redis_prefix)
    mine, theirs = Deduper.new_claim(), Deduper.new_claim()
    await d.claim("acme", ["a"], theirs)
    await d.release("acme", ["a"], mine)
    assert await d.claim("acme", ["a"], mine) == [IN_FLIGHT]


async def test_concurrent_claims_of_one_op_id_have_one_winner(
    redis_server_url: str, redis_prefix: str
) -> None:
    clients = [Redis.from_url(redis_server_url) for _ in range(4)]
    try:
        outcomes = await asyncio.gather(
            *(
                deduper(c, redis_prefix).claim("acme", ["op-1"], Deduper.new_claim())
                for c in clients * 5
            )
        )
        assert sorted(o[0] is CLAIMED for o in outcomes) == [False] * 19 + [True]
    finally:
        for c in clients:
            await c.aclose()


async def test_claim_of_a_crashed_request_expires(redis: Redis, redis_prefix: str) -> None:
    d = deduper(redis, redis_prefix, claim_ttl_s=0.05)
    await d.claim("acme", ["a"], Deduper.new_claim())
    key = dedupe_key(redis_prefix, "acme", "a")

    async def expired() -> bool:
        return not await redis.exists(key)

    await eventually(expired, "the claim to expire", within_s=5)
    assert await d.claim("acme", ["a"], Deduper.new_claim()) == [CLAIMED]


async def test_concurrent_commits_share_round_trips_and_all_land(
    redis: Redis, redis_prefix: str
) -> None:
    d = deduper(redis, redis_prefix)
    token = Deduper.new_claim()
    op_ids = [f"op-{i}" for i in range(60)]
    assert await d.claim("acme", op_ids, token) == [CLAIMED] * 60
    calls_before = (await redis.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
    await asyncio.gather(
        *(d.commit("acme", [(op_id, Written(i % 3, i))]) for i, op_id in enumerate(op_ids))
    )
    calls = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"] - calls_before
    assert calls < 60 / 2  # queued commits went together
    assert await d.claim("acme", op_ids, Deduper.new_claim()) == [
        Written(i % 3, i) for i in range(60)
    ]


async def test_commit_with_redis_down_fails_every_waiting_request(redis_prefix: str) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        d = deduper(dead, redis_prefix)
        outcomes = await asyncio.gather(
            *(d.commit("acme", [(f"op-{i}", Written(0, i))]) for i in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(o, RedisUnavailableError) for o in outcomes), outcomes
        assert all("commit" in o.detail for o in outcomes if isinstance(o, RedisUnavailableError))
    finally:
        await dead.aclose()
