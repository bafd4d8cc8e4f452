"""The ingest domain: judge each op, dedupe, produce, answer; read entity pages.

HTTP lives in ``routes/``; this module knows nothing of requests and responses beyond
the contract's models, and raises :mod:`ingest.errors` for whole-request failures.

One batch goes through::

    per op: size, schema, rules, clock skew               (rejected: invalid_op, ...)
      -> repeats of an op_id within the batch answered like their first occurrence
      -> one Redis script: rate limit (all clients of the batch, atomically; 429 debits
         and claims nothing), then claim the valid op ids  (duplicate: the original offset)
      -> produce the claimed ops concurrently, acks=all    (none written: 503)
      -> commit written ones, release the rest
      -> the server HLC receives the accepted ops' HLCs; answer with it
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from ingest.admission import Admission
from ingest.dedupe import CLAIMED, Deduper, Written
from ingest.errors import (
    OP_REJECTIONS,
    BrokerUnavailableError,
    OpRejection,
    RedisUnavailableError,
)
from ingest.metrics import IngestMetrics
from ingest.models import EntityPage
from ingest.producer import OpProducer, Record
from ingest.ratelimit import RateLimiter, client_costs
from ingest.validate import Rejected, check_op, op_label, result_op_id
from schemas.auth import Principal
from schemas.generated.entity_state_schema import EntityState
from schemas.generated.op_batch_result_schema import OpBatchResult
from schemas.generated.op_result_schema import OpResult, Status
from schemas.generated.op_schema import Op
from schemas.hlc import HlcClock
from schemas.readmodel import entities_key
from schemas.topics import entity_key

logger = logging.getLogger(__name__)

_IN_FLIGHT_POLL_S: Final = 0.02


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    max_clock_skew_ms: int
    in_flight_wait_s: float
    redis_prefix: str
    retry_after_s: int


def _rejected(op_id: str, rejection: Rejected) -> OpResult:
    return OpResult(
        op_id=op_id,
        status=Status.REJECTED,
        code=rejection.code.value,
        message=rejection.message,
        retriable=OP_REJECTIONS[rejection.code].retriable,
    )


def _duplicate(op_id: str, written: Written) -> OpResult:
    return OpResult(
        op_id=op_id, status=Status.DUPLICATE, partition=written.partition, offset=written.offset
    )


def _repeat(first: OpResult) -> OpResult:
    """The answer for a second copy of an op_id within one batch."""
    if first.status is Status.REJECTED:
        return first
    return first.model_copy(update={"status": Status.DUPLICATE})


def _record(op: Op, principal: Principal, received_at_ms: int) -> Record:
    doc: dict[str, Any] = {
        "op_id": op.op_id,
        "client_id": op.client_id,
        "collection": op.collection,
        "entity_id": op.entity_id,
        "kind": op.kind.value,
        "hlc": op.hlc,
    }
    if op.fields is not None:
        doc["fields"] = op.fields
    doc["tenant"] = principal.tenant
    doc["user_id"] = principal.user_id
    doc["received_at_ms"] = received_at_ms
    key = entity_key(principal.tenant, op.collection, op.entity_id)
    return key.encode(), orjson.dumps(doc)


class IngestService:
    """Accepts op batches into the log and serves pages of the read model."""

    def __init__(
        self,
        *,
        config: ServiceConfig,
        redis: Redis,
        producer: OpProducer,
        limiter: RateLimiter,
        deduper: Deduper,
        clock: HlcClock,
        metrics: IngestMetrics,
        wall_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self._config = config
        self._redis = redis
        self._producer = producer
        self._limiter = limiter
        self._dedupe = deduper
        self._admission = Admission(redis, limiter=limiter, deduper=deduper)
        self._clock = clock
        self._metrics = metrics
        self._wall_ms = wall_ms

    async def accept(self, raw_ops: Sequence[Any], principal: Principal) -> OpBatchResult:
        """Answer every op of a batch; raise only when the whole batch cannot be handled."""
        self._metrics.batch_ops.observe(len(raw_ops))
        costs = client_costs(raw_ops)
        now_ms = self._wall_ms()
        results: list[OpResult | None] = [None] * len(raw_ops)
        first_seen: dict[str, int] = {}
        repeats: list[tuple[int, int]] = []
        fresh: list[tuple[int, Op]] = []
        for i, raw in enumerate(raw_ops):
            checked = check_op(
                raw, i, now_ms=now_ms, max_clock_skew_ms=self._config.max_clock_skew_ms
            )
            if isinstance(checked, Rejected):
                results[i] = _rejected(result_op_id(raw), checked)
                continue
            first = first_seen.setdefault(checked.op_id, i)
            if first != i:
                repeats.append((i, first))
            else:
                fresh.append((i, checked))
        if fresh:
            # Shielded: a request cancelled mid-write still commits or releases its claims.
            await asyncio.shield(self._write(fresh, principal, now_ms, results, costs))
        else:
            await self._limiter.admit(principal.tenant, costs)
        for i, first in repeats:
            first_result = results[first]
            assert first_result is not None
            results[i] = _repeat(first_result)
        final = [r for r in results if r is not None]
        assert len(final) == len(raw_ops)
        self._count(final)
        return OpBatchResult(results=final, server_hlc=self._server_hlc(raw_ops, final))

    def _server_hlc(self, raw_ops: Sequence[Any], results: Sequence[OpResult]) -> str:
        """A fresh server HLC, ahead of the newest HLC among ops written or already known
        (the clock receives it), so a client adopting it moves past its own ops."""
        hlcs = [
            raw["hlc"]
            for raw, result in zip(raw_ops, results, strict=True)
            if result.status is not Status.REJECTED
        ]
        if hlcs:
            return self._clock.receive(max(hlcs)).format()  # string order is causal order
        return self._clock.now().format()

    def _count(self, results: Sequence[OpResult]) -> None:
        accepted = duplicate = 0
        for r in results:
            if r.status is Status.ACCEPTED:
                accepted += 1
            elif r.status is Status.DUPLICATE:
                duplicate += 1
            else:
                self._metrics.ops_rejected.labels(r.code or "unknown").inc()
        if accepted:
            self._metrics.ops_accepted.inc(accepted)
        if duplicate:
            self._metrics.ops_duplicate.inc(duplicate)

    async def _write(
        self,
        items: list[tuple[int, Op]],
        principal: Principal,
        received_at_ms: int,
        results: list[OpResult | None],
        costs: dict[str, int],
    ) -> None:
        """Admit and claim, produce, commit. Ops another request is producing are waited for."""
        tenant = principal.tenant
        token = Deduper.new_claim()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.in_flight_wait_s
        todo = items
        outcomes = await self._admission.admit_and_claim(
            tenant, costs, [op.op_id for _, op in todo], token
        )
        while todo:
            mine: list[tuple[int, Op]] = []
            busy: list[tuple[int, Op]] = []
            for (i, op), outcome in zip(todo, outcomes, strict=True):
                if isinstance(outcome, Written):
                    results[i] = _duplicate(op.op_id, outcome)
                elif outcome is CLAIMED:
                    mine.append((i, op))
                else:
                    busy.append((i, op))
            if mine:
                await self._produce_claimed(mine, principal, received_at_ms, token, results)
            if busy and loop.time() >= deadline:
                for i, op in busy:
                    results[i] = _rejected(
                        op.op_id,
                        Rejected(
                            OpRejection.IN_FLIGHT,
                            f"op {op_label({'op_id': op.op_id}, i)} rejected: another request "
                            "is writing the same op_id right now; retry to learn its outcome",
                        ),
                    )
                return
            if busy:
                self._metrics.claim_waits.inc()
                await asyncio.sleep(_IN_FLIGHT_POLL_S)  # poll the other request's claim
                outcomes = await self._dedupe.claim(tenant, [op.op_id for _, op in busy], token)
            todo = busy

    async def _produce_claimed(
        self,
        items: list[tuple[int, Op]],
        principal: Principal,
        received_at_ms: int,
        token: str,
        results: list[OpResult | None],
    ) -> None:
        tenant = principal.tenant
        op_ids = [op.op_id for _, op in items]
        records = [_record(op, principal, received_at_ms) for _, op in items]
        try:
            outcomes = await self._producer.produce(records)
        except Exception:
            await self._release(tenant, op_ids, token)
            raise
        written = [(op_id, w) for op_id, w in zip(op_ids, outcomes, strict=True) if w]
        try:
            await self._admission.commit(tenant, written)
        except RedisUnavailableError as exc:
            # The ops are in the log, so they are accepted; a resend after the claim expires
            # is written again and the streams job reports it as a duplicate.
            logger.warning("dedupe commit failed", extra={"ops": len(written), "error": exc.detail})
        unwritten = [op_id for op_id, w in zip(op_ids, outcomes, strict=True) if w is None]
        if unwritten:
            await self._release(tenant, unwritten, token)
            raise BrokerUnavailableError(
                f"Kafka did not acknowledge {len(unwritten)} of {len(op_ids)} ops in time; "
                "they were not accepted: retry the batch (ops already written come back as "
                "'duplicate')",
                retry_after_s=self._config.retry_after_s,
            )
        for (i, op), w in zip(items, outcomes, strict=True):
            assert w is not None
            results[i] = OpResult(
                op_id=op.op_id, status=Status.ACCEPTED, partition=w.partition, offset=w.offset
            )

    async def _release(self, tenant: str, op_ids: Sequence[str], token: str) -> None:
        try:
            await self._dedupe.release(tenant, op_ids, token)
        except RedisUnavailableError as exc:  # the claims expire on their own
            logger.warning("dedupe release failed", extra={"ops": len(op_ids), "error": exc.detail})

    async def list_entities(
        self, principal: Principal, collection: str, cursor: int, limit: int
    ) -> EntityPage:
        """One page of a collection of the caller's tenant, from the Redis read model."""
        key = entities_key(self._config.redis_prefix, principal.tenant, collection)
        try:
            next_cursor, items = await self._redis.hscan(key, cursor=cursor, count=limit)
        except RedisError as exc:
            raise RedisUnavailableError(
                f"read model unavailable: Redis error {exc.__class__.__name__}; retry later",
                retry_after_s=self._config.retry_after_s,
            ) from exc
        assert isinstance(items, dict)  # HSCAN without NOVALUES
        entities: list[EntityState] = []
        for entity_id, raw in items.items():
            try:
                state = EntityState.model_validate_json(raw)
            except ValidationError:
                logger.warning(
                    "unreadable read-model entry",
                    extra={"collection": collection, "entity_id": entity_id},
                )
                continue
            if state.tenant == principal.tenant:
                entities.append(state)
        return EntityPage(
            entities=entities, cursor=str(next_cursor) if int(next_cursor) != 0 else None
        )

    async def aclose(self) -> None:
        await self._admission.aclose()

    async def readiness(self, timeout_s: float) -> dict[str, str]:
        """'ok' or the reason per dependency."""
        broker = await self._producer.ready(timeout_s)
        try:
            async with asyncio.timeout(timeout_s):
                await self._redis.ping()
            redis = None
        except (RedisError, OSError, TimeoutError) as exc:
            redis = f"Redis unreachable ({exc.__class__.__name__})"
        return {"broker": broker or "ok", "redis": redis or "ok"}
