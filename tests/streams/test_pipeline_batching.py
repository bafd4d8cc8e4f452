"""Batched reconcile and the materialize consumer, through a real broker, Redis and worker.

Ops of one entity arrive in bursts, so the worker reconciles several of them per batch,
produces every op's outputs, writes the table changelog once per changed entity per batch
and must, after a restart, continue from that changelog.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from streams.lww import EntityRecord, public_state
from streams.provision import changelog_topic
from tests.streams.conftest import Pipeline
from tests.streams.helpers import (
    TopicReader,
    fold,
    hlc,
    key_of,
    op_record,
    produce_ops,
    read_all,
    wait_until,
    wait_until_sync,
)

N = 300


def has_receipts_for(ops: list[dict[str, Any]]) -> Callable[[list[Any]], bool]:
    wanted = {op["op_id"] for op in ops}
    return lambda records: wanted <= {orjson.loads(r.value)["op_id"] for r in records}


def applied_versions(receipts: list[dict[str, Any]]) -> dict[str, int]:
    """op id → version of its ``applied`` receipt; at-least-once may add ``duplicate`` ones."""
    out: dict[str, int] = {}
    for r in receipts:
        assert r["status"] in ("applied", "duplicate"), r
        if r["status"] == "applied":
            assert r["op_id"] not in out, f"{r['op_id']} applied twice"
            out[r["op_id"]] = r["version"]
    return out


def burst(first: int, count: int) -> list[dict[str, Any]]:
    return [
        op_record(
            op_id=f"b{i}",
            client_id=f"c{i % 3}",
            entity_id="hot",
            hlc=hlc(10_000 + i, f"c{i % 3}"),
            fields={"n": i, f"f{i % 5}": i},
        )
        for i in range(first, first + count)
    ]


async def test_burst_on_one_entity_gives_every_output_and_a_changelog_that_survives_restart(
    pipeline: Pipeline,
) -> None:
    t = pipeline.topics
    worker = pipeline.worker()
    ops = burst(0, N)
    await produce_ops(pipeline.bootstrap, t.ops, ops)
    async with TopicReader(pipeline.bootstrap, t.receipts) as receipts:
        await receipts.wait_for(has_receipts_for(ops), 60, f"{N} receipts")
        applied = applied_versions(receipts.values())
    assert applied == {op["op_id"]: i + 1 for i, op in enumerate(ops)}

    async with TopicReader(pipeline.bootstrap, t.entities) as entities:
        await entities.wait_for(
            lambda rs: any(orjson.loads(r.value)["version"] == N for r in rs), 30, "the last state"
        )
        versions = [v["version"] for v in entities.values()]
    assert sorted(set(versions)) == list(range(1, N + 1)), "a state for every op"
    assert versions == sorted(versions), "in op order"
    expected = fold(ops)["acme/tasks/hot"]

    changelog = changelog_topic(t, "streams")
    records = [r for r in await read_all(pipeline.bootstrap, changelog) if r.key == key_of(ops[0])]
    assert 1 <= len(records) <= N
    last = EntityRecord.from_dict(orjson.loads(records[-1].value))
    assert public_state(last) == expected

    async def read_model_has_last() -> bool:
        return (await pipeline.read_model()).get("hot") == expected

    await wait_until(read_model_has_last, 30, "the read model to hold the last state")

    def materialized_and_caught_up() -> bool:
        m = worker.metrics()
        return (
            m['syncpipe_streams_materialize_states_total{result="written"}'] >= 1
            and m['syncpipe_streams_consumer_lag_messages{topic="entities"}'] == 0
        )

    wait_until_sync(materialized_and_caught_up, 30, "materialize metrics")

    worker.stop()
    restarted = pipeline.worker()
    more = burst(N, 5)
    await produce_ops(pipeline.bootstrap, t.ops, [*ops[-3:], *more])  # re-delivered + new
    async with TopicReader(pipeline.bootstrap, t.receipts) as receipts:
        await receipts.wait_for(has_receipts_for(more), 60, "receipts after the restart")
        got = receipts.values()
    assert applied_versions(got) == {
        **{op["op_id"]: i + 1 for i, op in enumerate(ops)},
        **{op["op_id"]: N + 1 + i for i, op in enumerate(more)},
    }, "re-delivered ops are not applied again; new ones continue the versions"
    redelivered = {op["op_id"] for op in ops[-3:]}
    assert {r["op_id"] for r in got if r["status"] == "duplicate"} >= redelivered

    async def read_model_has_newest() -> bool:
        return (await pipeline.read_model()).get("hot") == fold([*ops, *more])["acme/tasks/hot"]

    await wait_until(read_model_has_newest, 30, "the read model to hold the newest state")
    assert restarted.alive()
