"""Per tenant+client token buckets in Redis, shared by every ingest replica.

One Lua script checks and debits all the buckets a batch touches atomically, using Redis'
clock (``TIME``) so replicas with drifting clocks agree. A bucket holds up to ``burst``
tokens (one per op) and refills at ``rate`` per second; a batch is admitted only if every
client it carries ops for has enough tokens, else nothing is debited and the caller gets
how long to wait. A cost larger than the bucket is capped at the bucket size, so a full
batch always passes eventually.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.errors import RateLimitedError, RedisUnavailableError
from schemas.hlc import NODE_PATTERN

logger = logging.getLogger(__name__)

_CLIENT_RE: Final = re.compile(NODE_PATTERN)

NO_CLIENT: Final = "-"
"""Bucket of a tenant's ops that carry no usable client_id (they are rejected anyway)."""

DEBIT: Final = """
-- debit(first, n, rate, burst, ttl_ms, cost_at): buckets KEYS[first .. first + n - 1],
-- the cost of the i-th at ARGV[cost_at + i]. Returns 0 when admitted (all buckets
-- debited), else the ms to wait (nothing debited).
local function debit(first, n, rate, burst, ttl_ms, cost_at)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local levels = {}
  local wait = 0
  for i = 1, n do
    local state = redis.call('HMGET', KEYS[first + i - 1], 'tokens', 'ts')
    local tokens = tonumber(state[1])
    local ts = tonumber(state[2])
    if tokens == nil or ts == nil then
      tokens = burst
      ts = now
    end
    tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)
    levels[i] = tokens
    local cost = math.min(tonumber(ARGV[cost_at + i]), burst)
    if tokens < cost then
      wait = math.max(wait, math.ceil((cost - tokens) * 1000 / rate))
    end
  end
  if wait > 0 then
    return wait
  end
  for i = 1, n do
    local key = KEYS[first + i - 1]
    local cost = math.min(tonumber(ARGV[cost_at + i]), burst)
    redis.call('HSET', key, 'tokens', tostring(levels[i] - cost), 'ts', tostring(now))
    redis.call('PEXPIRE', key, ttl_ms)
  end
  return 0
end
"""
"""Lua function checking and debiting token buckets (Redis' clock), shared by the scripts."""

TOKEN_BUCKET: Final = (
    DEBIT
    + """
-- KEYS[i]: bucket of client i. ARGV[1]: refill rate (tokens/s), ARGV[2]: burst,
-- ARGV[3]: key ttl (ms), ARGV[3 + i]: cost for client i.
-- Returns 0 when admitted (all buckets debited), else the ms to wait (nothing debited).
return debit(1, #KEYS, tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], 3)
"""
)


def bucket_key(prefix: str, tenant: str, client_id: str) -> str:
    return f"{prefix}rl:{tenant}:{client_id}"


def client_costs(raw_ops: Sequence[Any]) -> dict[str, int]:
    """Ops per client_id in a raw batch; ops without a usable client_id share one bucket."""
    counts: Counter[str] = Counter()
    for raw in raw_ops:
        client = raw.get("client_id") if isinstance(raw, dict) else None
        if isinstance(client, str) and _CLIENT_RE.fullmatch(client):
            counts[client] += 1
        else:
            counts[NO_CLIENT] += 1
    return dict(counts)


class RateLimiter:
    """Admits or refuses batches against per tenant+client token buckets."""

    def __init__(
        self, redis: Redis, *, prefix: str, rate_per_s: float, burst: int, retry_after_s: int
    ) -> None:
        self._script = redis.register_script(TOKEN_BUCKET)
        self._prefix = prefix
        self._rate = rate_per_s
        self._burst = burst
        self._retry_after_s = retry_after_s
        self._ttl_ms = math.ceil(burst / rate_per_s * 1000) + 1000

    def script_input(self, tenant: str, costs: dict[str, int]) -> tuple[list[str], list[Any]]:
        """KEYS (one bucket per client) and the costs, for :data:`DEBIT`-based scripts."""
        clients = sorted(costs)
        keys = [bucket_key(self._prefix, tenant, c) for c in clients]
        return keys, [costs[c] for c in clients]

    def params(self) -> list[Any]:
        """Refill rate, burst and bucket ttl (ms), in the order :data:`DEBIT` takes them."""
        return [repr(self._rate), self._burst, self._ttl_ms]

    def unavailable(self, exc: Exception) -> RedisUnavailableError:
        return RedisUnavailableError(
            f"rate limiter unavailable: Redis error {exc.__class__.__name__}; retry later",
            retry_after_s=self._retry_after_s,
        )

    def check(self, costs: dict[str, int], wait_ms: int) -> None:
        """Raise :class:`RateLimitedError` with Retry-After when the script said to wait."""
        if wait_ms > 0:
            retry_after_s = max(1, math.ceil(wait_ms / 1000))
            total = sum(costs.values())
            raise RateLimitedError(
                f"rate limit exceeded: {total} ops over the budget of {self._rate:g} ops/s "
                f"(burst {self._burst}) per tenant and client_id; retry in {retry_after_s} s",
                retry_after_s=retry_after_s,
            )

    async def admit(self, tenant: str, costs: dict[str, int]) -> None:
        """Debit ``costs`` (ops per client) or raise :class:`RateLimitedError` with Retry-After."""
        if not costs:
            return
        keys, cost_args = self.script_input(tenant, costs)
        try:
            wait_ms = int(await self._script(keys=keys, args=self.params() + cost_args))
        except RedisError as exc:
            raise self.unavailable(exc) from exc
        self.check(costs, wait_ms)
