"""Op-id dedupe in Redis: claim before producing, remember where it was written.

One key per tenant and op_id (``{prefix}dd:{tenant}:{op_id}``) moves through::

    (absent) --claim (SET NX, short TTL)--> "p:<claim token>" --commit--> "w:<partition>:<offset>"
                                                 |                          (dedupe TTL)
                                                 +--release (produce failed)--> (absent)

Claiming is atomic, so of two concurrent requests carrying the same op_id exactly one
produces it; the other sees the claim and waits for the outcome (the original partition
and offset, or a release it may claim again). A claim left by a crashed replica expires
after the claim TTL.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.coalesce import Coalescer
from ingest.errors import RedisUnavailableError

CLAIM_FN: Final = """
-- claim(first, last, value, ttl_ms): SET NX each of KEYS[first .. last] to our claim value.
-- Returns per key '' when claimed now, else the value already there.
local function claim(first, last, value, ttl_ms)
  local out = {}
  for i = first, last do
    local key = KEYS[i]
    if redis.call('SET', key, value, 'NX', 'PX', ttl_ms) then
      out[#out + 1] = ''
    else
      out[#out + 1] = redis.call('GET', key) or 'p:'
    end
  end
  return out
end
"""
"""Lua function claiming dedupe keys, shared by the scripts."""

CLAIM: Final = (
    CLAIM_FN
    + """
-- KEYS: one dedupe key per op. ARGV[1]: claim value, ARGV[2]: claim ttl (ms).
return claim(1, #KEYS, ARGV[1], ARGV[2])
"""
)

RELEASE: Final = """
-- KEYS: dedupe keys. ARGV[1]: our claim value. Deletes only keys still holding our claim.
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    n = n + 1
  end
end
return n
"""

COMMIT: Final = """
-- KEYS: dedupe keys. ARGV[1]: ttl (ms), ARGV[1 + i]: 'w:<partition>:<offset>' of key i.
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1 + i], 'PX', ARGV[1])
end
return #KEYS
"""

_WRITTEN: Final = "w:"
_PENDING: Final = "p:"


class _ClaimIds:
    """``p:<128 random bits of this process>.<counter>``: as unique as a UUID per request,
    for a fraction of the CPU (a forked child draws its own random part)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self._prefix = f"{_PENDING}{uuid.uuid4().hex}."
        return f"{self._prefix}{next(self._counter)}"


_claim_ids: Final = _ClaimIds()


@dataclass(frozen=True, slots=True)
class Written:
    """Where an op landed in the ops topic."""

    partition: int
    offset: int


class Claimed:
    """The op id is ours to produce."""


class InFlight:
    """Another request holds the claim and is producing the op right now."""


CLAIMED: Final = Claimed()
IN_FLIGHT: Final = InFlight()

ClaimOutcome = Written | Claimed | InFlight


def dedupe_key(prefix: str, tenant: str, op_id: str) -> str:
    return f"{prefix}dd:{tenant}:{op_id}"


def _parse(value: bytes | str) -> ClaimOutcome:
    text = value.decode() if isinstance(value, bytes) else value
    if text.startswith(_WRITTEN):
        partition, _, offset = text[len(_WRITTEN) :].partition(":")
        return Written(int(partition), int(offset))
    return IN_FLIGHT  # a claim, or something we did not write: never produce on it


def _unavailable(what: str, exc: Exception, retry_after_s: int) -> RedisUnavailableError:
    return RedisUnavailableError(
        f"op-id dedupe unavailable ({what}): Redis error {exc.__class__.__name__}; "
        "nothing was written, retry later",
        retry_after_s=retry_after_s,
    )


class Deduper:
    """Claims, commits and releases op ids for one ingest replica."""

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str,
        claim_ttl_s: float,
        ttl_s: int,
        retry_after_s: int,
    ) -> None:
        self._redis = redis
        self._claim = redis.register_script(CLAIM)
        self._release = redis.register_script(RELEASE)
        self._commit = redis.register_script(COMMIT)
        self._prefix = prefix
        self._claim_ttl_ms = max(1, int(claim_ttl_s * 1000))
        self._ttl_ms = ttl_s * 1000
        self._retry_after_s = retry_after_s
        self._commits: Coalescer[tuple[list[str], list[str]], None] = Coalescer(
            self._commit_together
        )

    def keys(self, tenant: str, op_ids: Sequence[str]) -> list[str]:
        return [dedupe_key(self._prefix, tenant, op_id) for op_id in op_ids]

    @property
    def claim_ttl_ms(self) -> int:
        return self._claim_ttl_ms

    @property
    def ttl_ms(self) -> int:
        return self._ttl_ms

    def unavailable(self, what: str, exc: Exception) -> RedisUnavailableError:
        return _unavailable(what, exc, self._retry_after_s)

    def commit_input(
        self, tenant: str, written: Sequence[tuple[str, Written]]
    ) -> tuple[list[str], list[str]]:
        """The dedupe keys of written op ids and the value each is committed to."""
        keys = self.keys(tenant, [op_id for op_id, _ in written])
        return keys, [f"{_WRITTEN}{w.partition}:{w.offset}" for _, w in written]

    @staticmethod
    def outcomes(values: Sequence[bytes | str]) -> list[ClaimOutcome]:
        """Claim outcomes from :data:`CLAIM_FN`'s answer."""
        return [CLAIMED if not v else _parse(v) for v in values]

    @staticmethod
    def new_claim() -> str:
        """A claim value unique to one request: this process's random id and a counter."""
        return _claim_ids.next()

    async def claim(self, tenant: str, op_ids: Sequence[str], token: str) -> list[ClaimOutcome]:
        """Claim every op id not seen before; say for each whether it is ours, written or busy."""
        try:
            values = await self._claim(
                keys=self.keys(tenant, op_ids), args=[token, self._claim_ttl_ms]
            )
        except RedisError as exc:
            raise _unavailable("claim", exc, self._retry_after_s) from exc
        return self.outcomes(values)

    async def commit(self, tenant: str, written: Sequence[tuple[str, Written]]) -> None:
        """Remember where each claimed op was written, for the dedupe TTL.

        Commits of concurrent requests share one script call: while one is on its way to
        Redis the next ones queue up and go together (every op acknowledged by one Kafka
        produce response usually commits in one round trip).
        """
        if written:
            await self._commits.submit(self.commit_input(tenant, written))

    async def _commit_together(
        self, batch: list[tuple[list[str], list[str]]]
    ) -> list[RedisUnavailableError | None]:
        keys: list[str] = []
        args: list[str | int] = [self._ttl_ms]
        for k, v in batch:
            keys += k
            args += v
        try:
            await self._commit(keys=keys, args=args)
        except RedisError as exc:
            return [_unavailable("commit", exc, self._retry_after_s) for _ in batch]
        return [None] * len(batch)

    async def release(self, tenant: str, op_ids: Sequence[str], token: str) -> None:
        """Drop our claims on ops that were not written, so a retry can claim them."""
        if not op_ids:
            return
        try:
            await self._release(keys=self.keys(tenant, op_ids), args=[token])
        except RedisError as exc:
            raise _unavailable("release", exc, self._retry_after_s) from exc
