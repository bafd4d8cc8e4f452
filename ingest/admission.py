"""Rate limit and op-id claims of one batch in a single Redis round trip.

A batch is first judged op by op (pure, no I/O); then one Lua script debits the token
buckets of every client the batch carries ops for (:mod:`ingest.ratelimit`) and, only if
that admitted the batch, claims the op ids of its valid ops (:mod:`ingest.dedupe`). A
refused batch debits nothing and claims nothing, exactly as the two steps run apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.dedupe import CLAIM_FN, ClaimOutcome, Deduper
from ingest.ratelimit import DEBIT, RateLimiter

ADMIT_AND_CLAIM: Final = (
    DEBIT
    + CLAIM_FN
    + """
-- KEYS[1 .. nb]: buckets, KEYS[nb + 1 ..]: dedupe keys. ARGV[1]: refill rate, ARGV[2]:
-- burst, ARGV[3]: bucket ttl (ms), ARGV[4]: nb, ARGV[5]: claim value, ARGV[6]: claim
-- ttl (ms), ARGV[6 + i]: cost of bucket i.
-- Returns {ms to wait} when refused (nothing debited or claimed), else {0, claims...}.
local nb = tonumber(ARGV[4])
local wait = debit(1, nb, tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], 6)
if wait > 0 then
  return {wait}
end
local out = claim(nb + 1, ARGV[5], ARGV[6])
table.insert(out, 1, 0)
return out
"""
)


class Admission:
    """Admits a batch against the rate limit and claims its op ids, in one script call."""

    def __init__(self, redis: Redis, *, limiter: RateLimiter, deduper: Deduper) -> None:
        self._script = redis.register_script(ADMIT_AND_CLAIM)
        self._limiter = limiter
        self._dedupe = deduper

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
        args: list[Any] = self._limiter.params()
        args += [len(bucket_keys), token, self._dedupe.claim_ttl_ms, *cost_args]
        try:
            answer = await self._script(
                keys=bucket_keys + self._dedupe.keys(tenant, op_ids), args=args
            )
        except RedisError as exc:
            raise self._limiter.unavailable(exc) from exc
        self._limiter.check(costs, int(answer[0]))
        return self._dedupe.outcomes(answer[1:])
