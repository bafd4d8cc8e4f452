"""A Lua script over a connection of its own (ingest/scriptconn.py), on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from ingest.scriptconn import ScriptConnection, pack_command

ECHO = "return {KEYS[1], ARGV[1], #KEYS, #ARGV}"


@pytest.fixture
async def redis(redis_server_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server_url)
    yield client
    await client.aclose()


@pytest.fixture
async def echo(redis: Redis) -> AsyncIterator[ScriptConnection]:
    script = ScriptConnection(redis, ECHO)
    yield script
    await script.aclose()


def test_commands_are_resp_arrays_of_bulk_strings() -> None:
    assert pack_command(b"EVALSHA", "ab", 2, "k") == (
        b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$1\r\nk\r\n"
    )
    assert pack_command("é") == b"*1\r\n$2\r\n\xc3\xa9\r\n"


async def test_script_missing_from_the_cache_is_sent_whole_then_called_by_sha(
    redis: Redis, echo: ScriptConnection
) -> None:
    await redis.script_flush()
    calls = await redis.info("commandstats")
    assert await echo(["k1", "k2"], ["a", 7]) == [b"k1", b"a", 2, 2]
    assert await echo(["k3"], [8]) == [b"k3", b"8", 1, 1]
    after = await redis.info("commandstats")
    evals = after["cmdstat_eval"]["calls"] - calls.get("cmdstat_eval", {}).get("calls", 0)
    assert evals == 1


async def test_a_dropped_connection_fails_one_call_then_reconnects(
    redis: Redis, echo: ScriptConnection
) -> None:
    assert await echo(["k"], ["v"]) == [b"k", b"v", 1, 1]
    (mine,) = [c for c in await redis.client_list() if c["cmd"] == "evalsha"]
    await redis.client_kill(mine["addr"])
    with pytest.raises(RedisError):
        await echo(["k"], ["v"])
    assert await echo(["k"], ["again"]) == [b"k", b"again", 1, 1]


async def test_script_errors_are_redis_errors_and_keep_the_connection(redis: Redis) -> None:
    script = ScriptConnection(redis, "return redis.call('INCR', KEYS[1])")
    try:
        await redis.set("not-a-number", "x")
        with pytest.raises(ResponseError):
            await script(["not-a-number"], [])
        await redis.delete("counter")
        assert await script(["counter"], []) == 1
    finally:
        await script.aclose()
