"""After ``replay rebuild`` a newly started worker applies new ops (real Kafka, Redis, workers).

Ops that arrive while the workers are stopped for a rebuild are a backlog the next worker
must apply when it starts. Each round here: stop the worker, rebuild, produce ops while
no worker runs, start a new worker and require receipts for every op, entity states and
a read model equal to the LWW oracle, new entities included.

This failed in most runs while Faust's table recovery, resuming flow a second time after
seeking the stream partitions, cleared the agents' buffers and so dropped records fetched
in between (see ``streams.app._keep_buffers_while_flowing``).
"""

from __future__ import annotations

from streams import replay
from tests.streams.conftest import Pipeline
from tests.streams.helpers import produce_ops, wait_until
from tests.streams.test_convergence import client_ops, wait_converged

ROUNDS = 3


async def test_worker_started_after_rebuild_applies_the_backlog_and_new_ops(
    pipeline: Pipeline,
) -> None:
    group = f"{pipeline.topics.prefix}streams"

    async def group_empty() -> bool:
        return await replay._live_members(pipeline.bootstrap, group) == 0

    worker = pipeline.worker()
    ops = client_ops("c1", 0, 150, 10, seed=41) + client_ops("c2", 3_000, 150, 10, seed=42)
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops)
    await wait_converged(pipeline, {str(op["op_id"]) for op in ops}, 90)
    for n in range(ROUNDS):
        worker.stop()
        await wait_until(group_empty, 30, "the streams group to empty")
        report = await replay.rebuild(pipeline.shared, "streams")
        assert report.applied, report.diff.summary()
        assert report.diff.identical, report.diff.summary()

        # new ops, some for entities the rebuild never saw, arrive while no worker runs
        backlog = client_ops(f"r{n}", 9_000 + n * 1_000, 60, 14, seed=43 + n)
        await produce_ops(pipeline.bootstrap, pipeline.topics.ops, backlog)
        worker = pipeline.worker()
        ops += backlog
        try:
            await wait_converged(pipeline, {str(op["op_id"]) for op in ops}, 60)
        except AssertionError as exc:
            raise AssertionError(f"round {n}: {exc}\n{pipeline.logs()}") from exc
        read_model = await pipeline.read_model()
        assert {f"e{i}" for i in range(10, 14)} & read_model.keys(), "new entities are shown"
