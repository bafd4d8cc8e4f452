"""The whole system under ``syncpipe dev``, driven through HTTP and WebSocket only.

Three clients with skewed clocks (one 90 s behind, one 25 s ahead) post concurrent,
conflicting ops to a handful of shared entities while each listens on its own WebSocket.
The pure LWW code (:mod:`streams.lww`) is the oracle:

1. every op gets a receipt on its author's socket; replaying the ops in the arrival order
   the receipts reveal reproduces every receipt, every conflict (delivered to the losing
   author only) and every entity state exactly;
2. ops written "offline an hour ago" lose to newer writes and their authors get conflicts;
3. streams is killed with SIGKILL mid-run: the supervisor says so and restarts it, every
   op still gets a receipt and the entities equal the fold of all ops;
4. dev is stopped and started again on the same data directory: the read model and a fresh
   WebSocket snapshot hold the same entities, and a new op continues each entity's
   version (the streams table came back, not just Redis).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from schemas.hlc import Hlc, HlcClock
from streams import lww
from streams.lww_types import Conflict, EntityRecord, Op, Receipt
from tests.e2e.devstack import DevProcess

COLLECTION = "tasks"
ENTITIES = tuple(f"task-{i}" for i in range(6))
FIELDS = ("title", "done", "prio")
SKEWS_MS = {"alice-phone": -90_000, "bob-laptop": 0, "carol-tablet": 25_000}
TENANT = USER = "dev"
DEADLINE_S = 120.0  # generous: a loaded 2-core machine

Json = dict[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def until(
    predicate: Callable[[], bool],
    what: str,
    timeout_s: float = DEADLINE_S,
    explain: Callable[[], str] = str,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}. {explain()}"
        await asyncio.sleep(0.05)


class Client:
    """One device: posts ops over HTTP, hears receipts, conflicts and states on its socket."""

    def __init__(self, name: str, skew_ms: int, stack: Stack) -> None:
        self.name = name
        self.stack = stack
        self.clock = HlcClock(name, wall_clock=lambda: now_ms() + skew_ms)
        self.rng = random.Random(name)
        self.posted: list[Json] = []
        self.receipts: dict[str, list[Json]] = {}
        self.conflicts: dict[str, list[Json]] = {}
        self.states: dict[str, Json] = {}
        self.snapshots = 0
        self.errors: list[Json] = []
        self._ws: ClientConnection | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self) -> None:
        url = f"{self.stack.ws}?client_id={self.name}&token={self.stack.token}"
        self._ws = await connect(url, open_timeout=30)
        hello = orjson.loads(await asyncio.wait_for(self._ws.recv(), 30))
        assert hello["type"] == "hello", hello
        await self._ws.send(orjson.dumps({"type": "subscribe", "collection": COLLECTION}).decode())
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]
        await until(lambda: self.snapshots > 0, f"{self.name}'s snapshot", 30)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()

    async def _ping(self) -> None:  # the server closes sockets idle for a minute
        assert self._ws is not None
        while True:
            await asyncio.sleep(10)
            await self._ws.send('{"type":"ping"}')

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            self._handle(orjson.loads(raw))

    def _handle(self, msg: Json) -> None:
        kind = msg["type"]
        if kind == "batch":
            for inner in msg["messages"]:
                self._handle(inner)
        elif kind == "receipt":
            self.receipts.setdefault(msg["receipt"]["op_id"], []).append(msg["receipt"])
        elif kind == "conflict":
            self.conflicts.setdefault(msg["conflict"]["op_id"], []).append(msg["conflict"])
        elif kind == "entity":
            self._keep(msg["state"])
        elif kind == "snapshot":
            for state in msg["entities"]:
                self._keep(state)
            self.snapshots += 1
        elif kind in ("error", "disconnect_notice"):
            self.errors.append(msg)

    def _keep(self, state: Json) -> None:
        held = self.states.get(state["entity_id"])
        if held is None or state["version"] > held["version"]:
            self.states[state["entity_id"]] = state

    def op(self, entity_id: str | None = None, fields: Json | None = None, hlc: str = "") -> Json:
        """A new op: random unless entity and fields are given."""
        entity_id = entity_id or self.rng.choice(ENTITIES)
        doc: Json = {
            "op_id": f"{self.name}-{uuid.uuid4().hex[:12]}",
            "client_id": self.name,
            "collection": COLLECTION,
            "entity_id": entity_id,
            "hlc": hlc or str(self.clock.now()),
        }
        if fields is None and self.rng.random() < 0.15:
            doc["kind"] = "delete"
        else:
            names = self.rng.sample(FIELDS, self.rng.randint(1, len(FIELDS)))
            n = len(self.posted)
            doc["kind"] = "upsert"
            doc["fields"] = fields or {f: f"{self.name}:{n}:{f}" for f in names}
        return doc

    async def post(self, http: httpx.AsyncClient, ops: list[Json]) -> None:
        """POST /v1/ops until every op is in the log (same op ids on retry: idempotent)."""
        deadline = time.monotonic() + DEADLINE_S
        while True:
            resp = await http.post(
                f"{self.stack.ingest}/v1/ops",
                json={"ops": ops},
                headers={"Authorization": f"Bearer {self.stack.token}"},
            )
            if resp.status_code in (429, 503) and time.monotonic() < deadline:
                await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            assert resp.status_code == 202, resp.text
            results = resp.json()["results"]
            assert [r["status"] for r in results] == ["accepted"] * len(ops), results
            self.posted.extend(ops)
            return

    def first_receipt(self, op_id: str) -> Json:
        """The receipt of the op's first processing (a re-delivery says 'duplicate')."""
        got = self.receipts[op_id]
        return next((r for r in got if r["status"] != "duplicate"), got[0])


class Stack:
    """Where one ``syncpipe dev`` run listens."""

    def __init__(self, dev: DevProcess) -> None:
        self.dev = dev
        self.ingest = f"http://127.0.0.1:{dev.ports['ingest']}"
        self.ws = f"ws://127.0.0.1:{dev.ports['push']}/v1/ws"
        self.token = dev.token()

    async def read_model(self, http: httpx.AsyncClient) -> dict[str, Json]:
        """Every entity of the collection through GET /v1/collections/.../entities."""
        states: dict[str, Json] = {}
        cursor: str | None = ""
        while cursor is not None:
            resp = await http.get(
                f"{self.ingest}/v1/collections/{COLLECTION}/entities",
                params={"cursor": cursor, "limit": 2},
                headers={"Authorization": f"Bearer {self.token}"},
            )
            assert resp.status_code == 200, resp.text
            page = resp.json()
            for state in page["entities"]:
                held = states.get(state["entity_id"])
                if held is None or state["version"] > held["version"]:
                    states[state["entity_id"]] = state
            cursor = page["cursor"]
        return states


def as_op(doc: Json, received_at_ms: int = 0) -> Op:
    return Op.from_dict(
        {**doc, "tenant": TENANT, "user_id": USER, "received_at_ms": received_at_ms}
    )


def fold(ops: list[Json]) -> dict[str, Any]:
    """LWW content of each entity after all ``ops``, in the order given (any order agrees)."""
    records: dict[str, EntityRecord | None] = {}
    for doc in ops:
        key = doc["entity_id"]
        records[key] = lww.apply(records.get(key), as_op(doc)).record
    return {key: lww.content(rec) for key, rec in records.items()}


def contents(states: dict[str, Json]) -> dict[str, Any]:
    return {key: lww.content(EntityRecord.from_dict(s)) for key, s in states.items()}


def replay_in_arrival_order(clients: list[Client]) -> None:
    """Replay the ops in the order their receipts reveal; check receipts, conflicts, states.

    Per entity, the op that produced version v arrived before every op that left the entity
    at v (stale ones): so (version, changed first) is an arrival order, and folding in it
    must reproduce each receipt and conflict exactly, with ingest's received_at_ms.
    """
    author = {doc["op_id"]: c for c in clients for doc in c.posted}
    by_entity: dict[str, list[tuple[Json, Json]]] = {}
    for c in clients:
        for doc in c.posted:
            receipt = c.first_receipt(doc["op_id"])
            by_entity.setdefault(doc["entity_id"], []).append((doc, receipt))
    finals: dict[str, Json] = {}
    for entity_id, ops in by_entity.items():
        ops.sort(key=lambda pair: (pair[1]["version"], pair[1]["status"] not in CHANGED))
        record: EntityRecord | None = None
        for doc, got in ops:
            result = lww.apply(record, as_op(doc, got["received_at_ms"]))
            record = result.record
            assert Receipt.from_dict(got) == result.receipt, (doc, got)
            owner = author[doc["op_id"]]
            conflicts = owner.conflicts.get(doc["op_id"], [])
            if result.conflict is None:
                assert conflicts == [], (doc, conflicts)
            else:
                assert conflicts, f"no conflict delivered for {doc}"
                assert Conflict.from_dict(conflicts[0]) == result.conflict
        assert record is not None
        finals[entity_id] = lww.public_state(record)
    for c in clients:  # conflicts reach only their authors; states reach everyone
        assert all(author[op_id] is c for op_id in c.conflicts), c.name
        assert {k: c.states.get(k) for k in finals} == finals, c.name


CHANGED = ("applied", "partial")


def all_receipted(clients: list[Client]) -> bool:
    return all(set(c.receipts) >= {doc["op_id"] for doc in c.posted} for c in clients)


def missing_receipts(clients: list[Client]) -> str:
    return "; ".join(
        f"{c.name}: {len({d['op_id'] for d in c.posted} - set(c.receipts))} of {len(c.posted)} "
        f"ops without a receipt, socket errors {c.errors}"
        for c in clients
    )


@pytest.fixture
def dev_runs(tmp_path: Path) -> Iterator[list[DevProcess]]:
    runs: list[DevProcess] = []
    try:
        yield runs
    finally:
        for run in runs:
            run.kill()


async def start(runs: list[DevProcess], data: Path, out: Path) -> Stack:
    dev = DevProcess(data, out)
    runs.append(dev)
    dev.start("--quiet")
    await asyncio.to_thread(dev.wait_up)
    return Stack(dev)


async def wave(
    c: Client, http: httpx.AsyncClient, batches: int, after_batch: Callable[[], None] | None = None
) -> None:
    """``batches`` batches of 5 random ops, one after another."""
    for _ in range(batches):
        await c.post(http, [c.op() for _ in range(5)])
        if after_batch is not None:
            after_batch()


async def concurrent_conflicting_ops(
    stack: Stack, http: httpx.AsyncClient, clients: list[Client]
) -> None:
    await asyncio.gather(*(wave(c, http, 6) for c in clients))
    await until(
        lambda: all_receipted(clients),
        "a receipt for every op of the first wave",
        explain=lambda: missing_receipts(clients),
    )
    everything = [doc for c in clients for doc in c.posted]
    assert len(everything) == 90
    await until_converged(stack, http, clients, everything)
    replay_in_arrival_order(clients)
    statuses = {c.first_receipt(d["op_id"])["status"] for c in clients for d in c.posted}
    assert {"applied", "stale"} <= statuses  # the skews made real conflicts
    assert any(c.conflicts for c in clients)


async def offline_edits_lose_and_their_authors_hear_it(
    stack: Stack, http: httpx.AsyncClient, clients: list[Client]
) -> None:
    """Each client edits, "offline an hour ago", a field another client wrote just now."""
    for i, c in enumerate(clients):
        other = clients[(i + 1) % len(clients)]
        fresh = other.op(f"note-for-{c.name}", {"title": f"{other.name} was here"})
        await other.post(http, [fresh])
        await until(lambda d=fresh, o=other: d["op_id"] in o.receipts, "the newer write")
    await until_converged(stack, http, clients, [d for c in clients for d in c.posted])
    current = await stack.read_model(http)
    for c in clients:
        entity_id = f"note-for-{c.name}"
        old = str(Hlc(now_ms() - 3_600_000, 0, c.name))
        doc = c.op(entity_id, {"title": f"{c.name}: offline edit"}, hlc=old)
        await c.post(http, [doc])
        await until(lambda d=doc, c=c: d["op_id"] in c.receipts, f"{c.name}'s receipt")
        await until(lambda d=doc, c=c: d["op_id"] in c.conflicts, f"{c.name}'s conflict")
        receipt = c.first_receipt(doc["op_id"])
        expected = lww.apply(
            EntityRecord.from_dict(current[entity_id]), as_op(doc, receipt["received_at_ms"])
        )
        assert receipt["status"] == "stale"
        assert Receipt.from_dict(receipt) == expected.receipt
        assert expected.conflict is not None
        assert Conflict.from_dict(c.conflicts[doc["op_id"]][0]) == expected.conflict
        assert all(doc["op_id"] not in o.conflicts for o in clients if o is not c)


async def streams_killed_mid_wave_loses_nothing(
    stack: Stack, http: httpx.AsyncClient, clients: list[Client]
) -> None:
    victim = stack.dev.pid_of("streams")
    posted = 0

    def kill_after_a_few_batches() -> None:
        nonlocal posted
        posted += 1
        if posted == 4:
            os.kill(victim, signal.SIGKILL)

    await asyncio.gather(*(wave(c, http, 6, kill_after_a_few_batches) for c in clients))
    dev = stack.dev
    await asyncio.to_thread(
        dev.wait_for_output, "[dev] streams exited with signal SIGKILL; restarting in"
    )
    await asyncio.to_thread(dev.wait_for_output, "[dev] streams restarted (restart 1)")
    assert dev.pid_of("streams") != victim
    await until(
        lambda: all_receipted(clients),
        "a receipt for every op after the streams restart",
        explain=lambda: missing_receipts(clients),
    )
    await until_converged(stack, http, clients, [d for c in clients for d in c.posted])


async def test_fullstack_converges_reports_conflicts_survives_kill_and_restart(
    tmp_path: Path, dev_runs: list[DevProcess]
) -> None:
    data, out = tmp_path / "data", tmp_path / "dev.out"
    async with httpx.AsyncClient(timeout=30) as http:
        stack = await start(dev_runs, data, out)
        clients = [Client(name, skew, stack) for name, skew in SKEWS_MS.items()]
        try:
            await asyncio.gather(*(c.connect() for c in clients))
            await concurrent_conflicting_ops(stack, http, clients)
            await offline_edits_lose_and_their_authors_hear_it(stack, http, clients)
            await streams_killed_mid_wave_loses_nothing(stack, http, clients)
            before = await stack.read_model(http)
        finally:
            await asyncio.gather(*(c.close() for c in clients))

        # Stop everything; start again on the same data directory.
        assert await asyncio.to_thread(stack.dev.stop, signal.SIGINT) == 0
        stack = await start(dev_runs, data, out)
        assert await stack.read_model(http) == before
        late = Client("dana-desktop", 0, stack)
        try:
            await late.connect()
            assert late.states == before  # a fresh snapshot over the WebSocket
            # A new op continues the entity's version: the streams table came back too.
            newest = max(Hlc.parse(d["hlc"]).wall_ms for c in clients for d in c.posted)
            doc = late.op(
                ENTITIES[0], {"title": "after restart"}, str(Hlc(newest + 1000, 0, late.name))
            )
            await late.post(http, [doc])
            await until(lambda: doc["op_id"] in late.receipts, "a receipt after the restart")
            receipt = late.receipts[doc["op_id"]][0]
            assert receipt["status"] == "applied"
            assert receipt["version"] == before[ENTITIES[0]]["version"] + 1
        finally:
            await late.close()
        assert await asyncio.to_thread(stack.dev.stop, signal.SIGINT) == 0


async def until_converged(
    stack: Stack, http: httpx.AsyncClient, clients: list[Client], ops: list[Json]
) -> None:
    """The read model and every client's pushed states equal the LWW fold of ``ops``."""
    expected = fold(ops)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        model = await stack.read_model(http)
        if contents(model) == expected and all(c.states == model for c in clients):
            return
        if time.monotonic() > deadline:
            diff = {k for k in expected if contents(model).get(k) != expected[k]}
            raise AssertionError(f"not converged: read model differs on {sorted(diff)}")
        await asyncio.sleep(0.2)
