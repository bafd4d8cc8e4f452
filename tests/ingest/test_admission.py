"""Rate limit and op-id claims in one script (ingest/admission.py) on a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from ingest.admission import Admission
from ingest.dedupe import CLAIMED, IN_FLIGHT, Deduper, Written, dedupe_key
from ingest.errors import RateLimitedError, RedisUnavailableError
from ingest.ratelimit import RateLimiter
from tests.processes import free_port


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


OPEN: list[Admission] = []


@pytest.fixture(autouse=True)
async def close_admissions() -> AsyncIterator[None]:
    """Each Admission holds a Redis connection of its own."""
    yield
    while OPEN:
        await OPEN.pop().aclose()


def parts(redis: Redis, prefix: str, burst: int = 3) -> tuple[Admission, RateLimiter, Deduper]:
    limiter = RateLimiter(redis, prefix=prefix, rate_per_s=0.01, burst=burst, retry_after_s=1)
    deduper = Deduper(redis, prefix=prefix, claim_ttl_s=30.0, ttl_s=3600, retry_after_s=1)
    admission = Admission(redis, limiter=limiter, deduper=deduper)
    OPEN.append(admission)
    return admission, limiter, deduper


async def test_admitted_batch_claims_its_op_ids_and_reports_known_ones(
    redis: Redis, redis_prefix: str
) -> None:
    admission, _, deduper = parts(redis, redis_prefix, burst=10)
    other = Deduper.new_claim()
    assert await deduper.claim("acme", ["busy", "done"], other) == [CLAIMED, CLAIMED]
    await deduper.commit("acme", [("done", Written(2, 7))])
    token = Deduper.new_claim()
    outcomes = await admission.admit_and_claim(
        "acme", {"phone-1": 2, "phone-2": 1}, ["new", "busy", "done"], token
    )
    assert outcomes == [CLAIMED, IN_FLIGHT, Written(2, 7)]
    assert await redis.get(dedupe_key(redis_prefix, "acme", "new")) == token.encode()


async def test_refused_batch_debits_nothing_and_claims_nothing(
    redis: Redis, redis_prefix: str
) -> None:
    admission, limiter, deduper = parts(redis, redis_prefix, burst=3)
    await limiter.admit("acme", {"phone-1": 3})  # phone-1's bucket is now empty
    with pytest.raises(RateLimitedError) as caught:
        await admission.admit_and_claim(
            "acme", {"phone-1": 1, "phone-2": 1}, ["a", "b"], Deduper.new_claim()
        )
    assert caught.value.retry_after_s >= 1
    assert await redis.exists(dedupe_key(redis_prefix, "acme", "a")) == 0
    # phone-2 was not debited: its whole burst is still there.
    await limiter.admit("acme", {"phone-2": 3})
    assert await deduper.claim("acme", ["a", "b"], Deduper.new_claim()) == [CLAIMED, CLAIMED]


async def test_batch_of_only_invalid_ops_is_still_rate_limited(
    redis: Redis, redis_prefix: str
) -> None:
    admission, _, _ = parts(redis, redis_prefix, burst=2)
    await admission.admit_and_claim("acme", {"-": 2}, [], Deduper.new_claim())
    with pytest.raises(RateLimitedError):
        await admission.admit_and_claim("acme", {"-": 1}, [], Deduper.new_claim())


async def test_redis_down_is_unavailable(redis_prefix: str) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        admission, _, _ = parts(dead, redis_prefix)
        with pytest.raises(RedisUnavailableError):
            await admission.admit_and_claim("acme", {"phone-1": 1}, ["a"], Deduper.new_claim())
    finally:
        await dead.aclose()


async def test_concurrent_batches_share_round_trips_each_judged_alone(
    redis: Redis, redis_prefix: str
) -> None:
    admission, _, _ = parts(redis, redis_prefix, burst=3)
    calls_before = (await redis.info("commandstats")).get("cmdstat_evalsha", {}).get("calls", 0)
    tokens = [Deduper.new_claim() for _ in range(40)]
    # 40 requests: phone-0..9 send 4 single-op batches each (a burst of 3 admits three),
    # and every op id is sent twice (its first request claims it, the second sees the claim).
    outcomes = await asyncio.gather(
        *(
            admission.admit_and_claim("acme", {f"phone-{i % 10}": 1}, [f"op-{i % 20}"], token)
            for i, token in enumerate(tokens)
        ),
        return_exceptions=True,
    )
    calls = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"] - calls_before
    assert calls < 40 / 2  # queued batches went together
    refused = [i for i, o in enumerate(outcomes) if isinstance(o, RateLimitedError)]
    assert refused == list(range(30, 40))  # each phone's fourth batch, in arrival order
    claimed = {i % 20 for i, o in enumerate(outcomes) if o == [CLAIMED]}
    busy = [i for i, o in enumerate(outcomes) if o == [IN_FLIGHT]]
    assert claimed == set(range(20))
    assert busy == list(range(20, 30))  # op-0..9 again, claimed by requests 0..9
    for op in range(20):
        holder = tokens[op].encode()
        assert await redis.get(dedupe_key(redis_prefix, "acme", f"op-{op}")) == holder


async def test_commits_ride_with_admissions_and_batches_after_them_see_the_write(
    redis: Redis, redis_prefix: str
) -> None:
    admission, _, deduper = parts(redis, redis_prefix, burst=100)
    token = Deduper.new_claim()
    assert await admission.admit_and_claim("acme", {"phone-1": 1}, ["first"], token) == [CLAIMED]
    calls_before = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
    # Queued together behind the first call: the commit of "first", then a resend of it.
    blocker = admission.admit_and_claim("acme", {"phone-2": 1}, ["other"], token)
    commit = admission.commit("acme", [("first", Written(1, 99))])
    resend = admission.admit_and_claim("acme", {"phone-3": 1}, ["first"], Deduper.new_claim())
    outcomes = await asyncio.gather(blocker, commit, resend)
    assert outcomes == [[CLAIMED], None, [Written(1, 99)]]
    calls = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"] - calls_before
    assert calls <= 2
    key = dedupe_key(redis_prefix, "acme", "first")
    assert await redis.get(key) == b"w:1:99"
    assert 0 < await redis.pttl(key) <= 3600 * 1000
    assert await deduper.claim("acme", ["first"], token) == [Written(1, 99)]


async def test_commit_with_redis_down_is_unavailable(redis_prefix: str) -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    try:
        admission, _, _ = parts(dead, redis_prefix)
        with pytest.raises(RedisUnavailableError, match="commit"):
            await admission.commit("acme", [("a", Written(0, 1))])
    finally:
        await dead.aclose()
