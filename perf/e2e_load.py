"""Open-loop op load through ingest for the end-to-end bench.

Ops are scheduled at a fixed rate (op ``i`` due at ``i / rate`` seconds) and spread round
robin over the tenants. Each tenant has one sender holding one keep-alive HTTP connection
(``bench_ingest.Connection``) that behaves like the PWA's outbox: one request in flight,
and every op that came due meanwhile goes in the next one. At low load each request
carries one op; under pressure batches grow instead of the schedule slipping. Each op is
stamped with its post time (when its request is built) in its ``bench`` field; how far
posting lags the schedule is reported separately, so a load generator that cannot keep up
is visible rather than hidden in the latency.

All ops come from one client id with one hybrid logical clock that only moves forward, and
a tenant's requests are sequential, so a later op on an entity always wins LWW: every
accepted op produces a new entity state (no stale op that nobody would receive).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import orjson
from bench_ingest import Connection
from e2e_client import STEP_SPAN, bench_field

CLIENT_ID = "bench-load"


class Hlc:
    """``{wall_ms:015d}-{counter:04x}-{node}``, strictly increasing across calls."""

    def __init__(self, node: str) -> None:
        self.node, self.wall, self.counter = node, 0, 0

    def next(self) -> str:
        now = time.time_ns() // 1_000_000
        if now > self.wall:
            self.wall, self.counter = now, 0
        else:
            self.counter += 1
            if self.counter > 0xFFFF:
                self.wall, self.counter = self.wall + 1, 0
        return f"{self.wall:015d}-{self.counter:04x}-{self.node}"


@dataclass
class StepLoad:
    """What one step posted."""

    posted: dict[str, int] = field(default_factory=dict)  # tenant -> accepted ops
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # status or code -> ops
    requests: int = 0
    request_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)  # post time - scheduled time
    errors: list[str] = field(default_factory=list)

    def reject(self, reason: str, ops: int) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + ops


class Sender:
    """Posts one tenant's due ops, one request at a time."""

    def __init__(self, tenant: str, token: str, load: Load) -> None:
        self.tenant, self.token, self.load = tenant, token, load
        self.pending: list[tuple[int, float, str]] = []  # (n, scheduled wall ms, entity)
        self.wake = asyncio.Event()
        self.conn: Connection | None = None

    async def post(self, stats: StepLoad) -> None:
        batch, self.pending = self.pending, []
        posted_ms = time.time() * 1000
        ops = []
        for n, scheduled_ms, entity in batch:
            stats.lag_ms.append(posted_ms - scheduled_ms)
            ops.append(
                {
                    "op_id": f"{self.load.run_id}-{n}",
                    "client_id": CLIENT_ID,
                    "collection": self.load.collection,
                    "entity_id": entity,
                    "kind": "upsert",
                    "fields": {"bench": bench_field(n, posted_ms), "title": f"task {n}"},
                    "hlc": self.load.hlc.next(),
                }
            )
        body = orjson.dumps({"ops": ops})
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = await Connection.open(self.load.port)
            status, payload = await self.conn.post("/v1/ops", body, self.token)
        except (OSError, asyncio.IncompleteReadError) as exc:
            stats.reject("connection error", len(ops))
            stats.errors.append(f"{type(exc).__name__}: {exc}")
            self.close()
            return
        stats.requests += 1
        stats.request_ms.append((time.perf_counter() - started) * 1000)
        if status != 202:
            stats.reject(f"http {status}", len(ops))
            return
        for result in orjson.loads(payload)["results"]:
            if result["status"] == "accepted":
                stats.accepted += 1
                stats.posted[self.tenant] = stats.posted.get(self.tenant, 0) + 1
            else:
                stats.reject(str(result.get("code") or result["status"]), 1)

    async def run(self, stats: StepLoad, done: asyncio.Event) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                await self.post(stats)
            if done.is_set():
                return

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Load:
    """Posts ops for the tenants of one profile."""

    def __init__(
        self, port: int, collection: str, tokens: dict[str, str], entities_per_tenant: int
    ) -> None:
        self.port, self.collection = port, collection
        self.run_id = f"b{time.time_ns() // 1_000_000:x}"
        self.hlc = Hlc(CLIENT_ID)
        self.senders = [Sender(t, tok, self) for t, tok in tokens.items()]
        self.entities = entities_per_tenant

    async def step(self, step: int, ops: int | None, rate: float, seconds: float) -> StepLoad:
        """Post ``rate`` ops/s for ``seconds`` (or exactly ``ops`` ops, one per tenant
        round, as fast as the schedule allows); numbered ``step * STEP_SPAN + i``."""
        stats = StepLoad()
        total = ops if ops is not None else int(rate * seconds)
        done = asyncio.Event()
        tasks = [asyncio.create_task(s.run(stats, done)) for s in self.senders]
        tenants = len(self.senders)
        t0_wall, t0 = time.time() * 1000, time.monotonic()
        issued = 0
        try:
            while issued < total:
                due = min(total, int((time.monotonic() - t0) * rate) + 1)
                while issued < due:
                    sender = self.senders[issued % tenants]
                    entity = f"e{(issued // tenants) % self.entities}"
                    n = step * STEP_SPAN + issued
                    sender.pending.append((n, t0_wall + issued / rate * 1000, entity))
                    sender.wake.set()
                    issued += 1
                await asyncio.sleep(0.002)
        finally:
            done.set()
            for sender in self.senders:
                sender.wake.set()
            await asyncio.gather(*tasks)
        return stats

    def close(self) -> None:
        for sender in self.senders:
            sender.close()
