"""Token buckets of ingest/ratelimit.py on a real Redis, shared by replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ingest.errors import RateLimitedError, RedisUnavailableError
from ingest.ratelimit import NO_CLIENT, RateLimiter, client_costs
from tests.processes import free_port


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


def limiter(redis: Redis, prefix: str, rate: float = 0.01, burst: int = 10) -> RateLimiter:
    return RateLimiter(redis, prefix=prefix, rate_per_s=rate, burst=burst, retry_after_s=1)


async def test_bucket_admits_the_burst_then_refuses_with_retry_after(
    redis: Redis, redis_prefix: str
) -> None:
    rl = limiter(redis, redis_prefix, rate=0.01, burst=10)
    for _ in range(5):
        await rl.admit("acme", {"phone-1": 2})
    with pytest.raises(RateLimitedError) as caught:
        await rl.admit("acme", {"phone-1": 3})
    # 3 tokens at 0.01/s: 300 s, less whatever refilled while the test ran.
    assert caught.value.retry_after_s is not None
    assert 250 <= caught.value.retry_after_s <= 300
    assert "per tenant and client_id" in caught.value.detail
    assert caught.value.headers() == {"Retry-After": str(caught.value.retry_after_s)}


async def test_buckets_are_per_tenant_and_client(redis: Redis, redis_prefix: str) -> None:
    rl = limiter(redis, redis_prefix, rate=0.1, burst=5)
    await rl.admit("acme", {"phone-1": 5})
    await rl.admit("acme", {"phone-2": 5})
    await rl.admit("other", {"phone-1": 5})
    with pytest.raises(RateLimitedError):
        await rl.admit("acme", {"phone-1": 1})


async def test_replicas_share_one_bucket(redis_server_url: str, redis_prefix: str) -> None:
    a, b = Redis.from_url(redis_server_url), Redis.from_url(redis_server_url)
    try:
        first, second = limiter(a, redis_prefix, burst=10), limiter(b, redis_prefix, burst=10)
        results = await asyncio.gather(
            *(rl.admit("acme", {"phone-1": 1}) for rl in [first, second] * 8),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, RateLimitedError)]
        assert len(refused) == 6  # 16 requests against one bucket of 10
    finally:
        await a.aclose()
        await b.aclose()


async def test_batch_over_budget_for_one_client_debits_nobody(
    redis: Redis, redis_prefix: str
) -> None:
    rl = limiter(redis, redis_prefix, rate=0.01, burst=4)
    await rl.admit("acme", {"phone-1": 4})
    with pytest.raises(RateLimitedError):
        await rl.admit("acme", {"phone-1": 1, "phone-2": 4})
    await rl.admit("acme", {"phone-2": 4})  # phone-2 was not debited by the refused batch


async def test_cost_above_burst_is_capped_so_a_full_batch_passes(
    redis: Redis, redis_prefix: str
) -> None:
    await limiter(redis, redis_prefix, burst=10).admit("acme", {"phone-1": 500})


def test_client_costs_counts_ops_per_client() -> None:
    raw = [{"client_id": "a"}, {"client_id": "a"}, {"client_id": "b"}, {"client_id": 7}, "x"]
    assert client_costs(raw) == {"a": 2, "b": 1, NO_CLIENT: 2}


async def test_redis_down_is_unavailable_not_a_crash(redis_prefix: str) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(RedisUnavailableError) as caught:
            await limiter(dead, redis_prefix).admit("acme", {"phone-1": 1})
        assert caught.value.retry_after_s == 1
    finally:
        await dead.aclose()
