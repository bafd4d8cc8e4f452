"""Convergence: concurrent writers with skewed clocks, and a worker killed under load.

The oracle is ``lww.py`` itself, folded over the ops topic in the order the log holds
them; the worker's final entity states and the read model must equal it exactly.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import orjson

from streams.lww import content
from tests.streams.conftest import Pipeline
from tests.streams.helpers import (
    TopicReader,
    fold,
    hlc,
    op_record,
    oracle_from_log,
    produce_ops,
    wait_until,
)

FIELDS = ("title", "done", "prio", "notes")


def client_ops(client: str, skew_ms: int, count: int, entities: int, seed: int) -> list[Any]:
    """``count`` ops by one client whose clock is ``skew_ms`` off, over ``entities`` ids."""
    rng = random.Random(seed)
    base = int(time.time() * 1000) + skew_ms
    ops = []
    for i in range(count):
        entity = f"e{rng.randrange(entities)}"
        if rng.random() < 0.08:
            ops.append(
                op_record(
                    op_id=f"{client}-{i}",
                    client_id=client,
                    entity_id=entity,
                    hlc=hlc(base + i, client),
                    kind="delete",
                )
            )
            continue
        names = rng.sample(FIELDS, rng.randint(1, 3))
        ops.append(
            op_record(
                op_id=f"{client}-{i}",
                client_id=client,
                entity_id=entity,
                hlc=hlc(base + i * 3, client, i % 4),
                fields={n: f"{client}:{i}" for n in names},
            )
        )
    return ops


async def wait_converged(pipeline: Pipeline, op_ids: set[str], deadline_s: float) -> None:
    """Every op has a receipt and entity states and read model equal the oracle."""
    t = pipeline.topics
    async with TopicReader(pipeline.bootstrap, t.receipts) as receipts:
        await receipts.wait_for(
            lambda rs: {orjson.loads(r.value)["op_id"] for r in rs} >= op_ids,
            deadline_s,
            f"receipts for all {len(op_ids)} ops",
        )
    oracle = await oracle_from_log(pipeline.bootstrap, t.ops)
    async with TopicReader(pipeline.bootstrap, t.entities) as entities:

        async def states_match() -> bool:
            await entities.poll()
            latest = {k.decode(): v for k, v in entities.latest_by_key().items()}
            return latest == oracle

        await wait_until(states_match, 60, "entity states to equal the oracle", interval=0)

    async def read_model_matches() -> bool:
        rm = await pipeline.read_model()
        return rm == {key.rsplit("/", 1)[1]: state for key, state in oracle.items()}

    await wait_until(read_model_matches, 30, "the read model to equal the oracle")


async def test_concurrent_skewed_writers_converge_to_lww_oracle(pipeline: Pipeline) -> None:
    pipeline.worker()
    skews = {"phone": -45_000, "laptop": 0, "tablet": 7_000, "watch": 50_000}
    per_client = {c: client_ops(c, s, 250, 12, seed=n) for n, (c, s) in enumerate(skews.items())}
    await asyncio.gather(
        *(produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops) for ops in per_client.values())
    )
    all_ops = [op for ops in per_client.values() for op in ops]
    await wait_converged(pipeline, {op["op_id"] for op in all_ops}, 120)
    # content does not depend on arrival order: any order of the same ops agrees
    shuffled = list(all_ops)
    random.Random(7).shuffle(shuffled)
    oracle = await oracle_from_log(pipeline.bootstrap, pipeline.topics.ops)
    any_order = fold(shuffled)
    assert {k: content_of(v) for k, v in oracle.items()} == {
        k: content_of(v) for k, v in any_order.items()
    }


def content_of(state: dict[str, Any]) -> Any:
    from streams.lww import EntityRecord

    return content(EntityRecord.from_dict(state))
