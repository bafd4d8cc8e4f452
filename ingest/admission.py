"""Rate limit and op-id claims of batches in a single Redis round trip.

A batch is first judged op by op (pure, no I/O); then one Lua script debits the token
buckets of every client the batch carries ops for (:mod:`ingest.ratelimit`) and, only if
that admitted the batch, claims the op ids of its valid ops (:mod:`ingest.dedupe`). A
refused batch debits nothing and claims nothing, exactly as the two steps run apart.

Batches of concurrent requests share one script call (on a connection of its own,
:mod:`ingest.scriptconn`): while one call is on its way to Redis the next batches queue
up and go together. The script handles them one after the other, each exactly as if it
came alone, so sharing changes nothing but the round trips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.coalesce import Coalescer
from ingest.dedupe import CLAIM_FN, ClaimOutcome, Deduper, Written
from ingest.errors import RedisUnavailableError
from ingest.ratelimit import DEBIT, RateLimiter
from ingest.scriptconn import ScriptConnection

ADMIT_AND_CLAIM: Final = (
    DEBIT
    + CLAIM_FN
    + """
-- ARGV[1]: refill rate, ARGV[2]: burst, ARGV[3]: bucket ttl (ms), ARGV[4]: claim ttl (ms),
-- ARGV[5]: dedupe ttl (ms), ARGV[6]: number of commits nc, ARGV[7 .. 6 + nc]: the
-- 'w:<partition>:<offset>' of dedupe keys KEYS[1 .. nc] (written first, so a batch below
-- sees them). Then the number of batches; then per batch: nb (buckets), nk (dedupe keys),
-- claim value, and the nb bucket costs. KEYS after the commits: per batch its nb bucket
-- keys, then its nk dedupe keys.
-- Returns per batch {ms to wait} when refused (nothing debited or claimed), else
-- {0, claim per dedupe key...}.
local nc = tonumber(ARGV[6])
for i = 1, nc do
  redis.call('SET', KEYS[i], ARGV[6 + i], 'PX', ARGV[5])
end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local out = {}
local at = 7 + nc
local first = nc + 1
for b = 1, tonumber(ARGV[at]) do
  local nb = tonumber(ARGV[at + 1])
  local nk = tonumber(ARGV[at + 2])
  local wait = debit(first, nb, rate, burst, ARGV[3], at + 3)
  if wait > 0 then
    out[b] = {wait}
  else
    local claims = claim(first + nb, first + nb + nk - 1, ARGV[at + 3], ARGV[4])
    table.insert(claims, 1, 0)
    out[b] = claims
  end
  first = first + nb + nk
  at = at + 3 + nb
end
return out
"""
)


@dataclass(frozen=True, slots=True)
class _Batch:
    bucket_keys: list[str]
    costs: list[int]
    dedupe_keys: list[str]
    token: str


@dataclass(frozen=True, slots=True)
class _Commit:
    dedupe_keys: list[str]
    values: list[str]


class Admission:
    """Admits batches against the rate limit and claims their op ids, in one script call;
    commits of written op ids ride along in the same calls."""

    def __init__(self, redis: Redis, *, limiter: RateLimiter, deduper: Deduper) -> None:
        self._script = ScriptConnection(redis, ADMIT_AND_CLAIM)
        self._limiter = limiter
        self._dedupe = deduper
        self._calls: Coalescer[_Batch | _Commit, list[Any] | None] = Coalescer(self._send)

    async def admit_and_claim(
        self, tenant: str, costs: dict[str, int], op_ids: Sequence[str], token: str
    ) -> list[ClaimOutcome]:
        """Debit ``costs`` then claim ``op_ids`` with ``token``; say per op id what happened.

        Raises :class:`~ingest.errors.RateLimitedError` (nothing debited, nothing claimed)
        or :class:`~ingest.errors.RedisUnavailableError`.
        """
        if not op_ids:
            await self._limiter.admit(tenant, costs)
            return []
        if not costs:
            return await self._dedupe.claim(tenant, op_ids, token)
        bucket_keys, cost_args = self._limiter.script_input(tenant, costs)
        answer = await self._calls.submit(
            _Batch(bucket_keys, cost_args, self._dedupe.keys(tenant, op_ids), token)
        )
        assert answer is not None
        self._limiter.check(costs, int(answer[0]))
        return self._dedupe.outcomes(answer[1:])

    async def commit(self, tenant: str, written: Sequence[tuple[str, Written]]) -> None:
        """:meth:`Deduper.commit <ingest.dedupe.Deduper.commit>`, sharing the round trips of
        admissions (one script call carries the commits and batches queued meanwhile).

        Raises :class:`~ingest.errors.RedisUnavailableError`.
        """
        if written:
            keys, values = self._dedupe.commit_input(tenant, written)
            await self._calls.submit(_Commit(keys, values))

    async def aclose(self) -> None:
        """Close the script's connection (the Redis client's pool closes the others)."""
        await self._script.aclose()

    async def _send(
        self, items: list[_Batch | _Commit]
    ) -> Sequence[list[Any] | RedisUnavailableError | None]:
        keys: list[str] = []
        values: list[str] = []
        batches: list[_Batch] = []
        for item in items:
            if isinstance(item, _Commit):
                keys += item.dedupe_keys
                values += item.values
            else:
                batches.append(item)
        args: list[Any] = self._limiter.params()
        args += [self._dedupe.claim_ttl_ms, self._dedupe.ttl_ms, len(values), *values]
        args.append(len(batches))
        for b in batches:
            keys += b.bucket_keys
            keys += b.dedupe_keys
            args += [len(b.bucket_keys), len(b.dedupe_keys), b.token, *b.costs]
        try:
            answers: list[list[Any]] = await self._script(keys, args)
        except (RedisError, OSError) as exc:  # OSError: a socket failing outside redis-py
            return [
                self._dedupe.unavailable("commit", exc)
                if isinstance(item, _Commit)
                else self._limiter.unavailable(exc)
                for item in items
            ]
        answered = iter(answers)
        return [None if isinstance(item, _Commit) else next(answered) for item in items]
