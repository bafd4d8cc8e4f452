"""Replays against a real broker, Redis and worker: rebuild, shadow + diff, dump/load."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from schemas.topics import Topics
from streams import replay
from streams.errors import WorkersRunningError
from streams.provision import ensure_topics
from tests.streams.conftest import PARTITIONS, Pipeline
from tests.streams.helpers import oracle_from_log, produce_ops, wait_until
from tests.streams.test_convergence import client_ops, wait_converged


async def test_rebuild_reproduces_identical_entities_and_refuses_while_workers_run(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.worker()
    ops = client_ops("c1", 0, 200, 15, seed=11) + client_ops("c2", 4_000, 200, 15, seed=12)
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops)
    await wait_converged(pipeline, {op["op_id"] for op in ops}, 90)
    with pytest.raises(WorkersRunningError):
        await replay.rebuild(pipeline.shared, "streams")
    worker.stop()

    async def group_empty() -> bool:
        return (
            await replay._live_members(pipeline.bootstrap, f"{pipeline.topics.prefix}streams") == 0
        )

    await wait_until(group_empty, 30, "the streams group to empty")
    before = await pipeline.read_model()
    report = await replay.rebuild(pipeline.shared, "streams")
    assert report.applied
    assert report.diff.identical, report.diff.summary()
    assert report.ops == len(ops)
    assert await pipeline.read_model() == before
    oracle = await oracle_from_log(pipeline.bootstrap, pipeline.topics.ops)
    assert before == {k.rsplit("/", 1)[1]: v for k, v in oracle.items()}


async def test_shadow_replay_matches_live_and_diff_says_so(pipeline: Pipeline) -> None:
    pipeline.worker()
    ops = client_ops("c1", 0, 150, 10, seed=21) + client_ops("c2", -9_000, 150, 10, seed=22)
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops)
    await wait_converged(pipeline, {op["op_id"] for op in ops}, 90)
    shadow = f"s{uuid.uuid4().hex[:8]}."
    result = await replay.shadow(pipeline.shared, shadow, partitions=PARTITIONS)
    assert result.ops == len(ops)
    full = await replay.diff(pipeline.bootstrap, pipeline.topics.prefix, shadow, content_only=False)
    assert full.identical, full.summary()
    assert full.same == len({(op["entity_id"]) for op in ops})

    partial_prefix = f"p{uuid.uuid4().hex[:8]}."
    await replay.shadow(pipeline.shared, partial_prefix, partitions=PARTITIONS, from_offset=10)
    partial = await replay.diff(
        pipeline.bootstrap, pipeline.topics.prefix, partial_prefix, content_only=False
    )
    assert not partial.identical


async def test_dump_then_load_copies_a_topic(pipeline: Pipeline, tmp_path: Path) -> None:
    ops = client_ops("c1", 0, 120, 8, seed=31)
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops)
    first = tmp_path / "ops.jsonl"
    assert await replay.dump(pipeline.bootstrap, pipeline.topics.ops, first) == len(ops)
    copy = Topics(f"c{uuid.uuid4().hex[:8]}.")
    await ensure_topics(pipeline.bootstrap, copy, partitions=PARTITIONS, names=[copy.ops])
    assert await replay.load(pipeline.bootstrap, first, copy.ops) == len(ops)
    second = tmp_path / "copy.jsonl"
    assert await replay.dump(pipeline.bootstrap, copy.ops, second) == len(ops)

    def records(path: Path) -> list[tuple[int, int, str | None, str | None]]:
        lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
        return [(d["partition"], d["offset"], d["key"], d["value"]) for d in lines]

    assert records(first) == records(second)
    assert not [p for p in records_dir(tmp_path) if p.endswith(".partial")]


def records_dir(path: Path) -> list[str]:
    return [p.name for p in path.iterdir()]
