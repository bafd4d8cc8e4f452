"""Ops on the ops topic → entity state, conflicts, receipts and the read model, through
a real broker, a real Redis and a real ``python -m streams`` worker."""

from __future__ import annotations

import base64

import orjson

from tests.processes import REPO
from tests.streams.conftest import Pipeline
from tests.streams.helpers import (
    TopicReader,
    fold,
    hlc,
    key_of,
    op_record,
    produce,
    produce_ops,
    wait_until,
)


async def test_ops_become_state_conflict_receipts_and_read_model(pipeline: Pipeline) -> None:
    t = pipeline.topics
    pipeline.worker()
    ops = [
        op_record(
            op_id="a1",
            client_id="ca",
            entity_id="e1",
            hlc=hlc(1000, "ca"),
            fields={"title": "A", "done": False},
        ),
        op_record(
            op_id="b1", client_id="cb", entity_id="e1", hlc=hlc(900, "cb"), fields={"title": "B"}
        ),
    ]
    await produce_ops(pipeline.bootstrap, t.ops, ops)
    async with TopicReader(pipeline.bootstrap, t.receipts) as receipts:
        await receipts.wait_for(lambda rs: len(rs) >= 2, 60, "two receipts")
        got = {r["op_id"]: r for r in receipts.values()}
    assert got["a1"]["status"] == "applied"
    assert got["a1"]["version"] == 1
    assert got["b1"]["status"] == "stale"
    assert got["b1"]["version"] == 1
    assert {r.key for r in receipts.records} == {b"acme/ca", b"acme/cb"}
    async with TopicReader(pipeline.bootstrap, t.conflicts) as conflicts:
        await conflicts.wait_for(lambda rs: len(rs) >= 1, 30, "a conflict")
        (conflict,) = conflicts.values()
    assert conflict["op_id"] == "b1"
    assert conflict["fields"]["title"]["winner"]["value"] == "A"
    async with TopicReader(pipeline.bootstrap, t.entities) as entities:
        await entities.wait_for(lambda rs: len(rs) >= 1, 30, "the entity state")
        state = entities.latest_by_key()[key_of(ops[0])]
    assert state == fold(ops)["acme/tasks/e1"]
    assert orjson.loads(orjson.dumps(state))["version"] == 1
    read_model = {}

    async def materialized() -> bool:
        nonlocal read_model
        read_model = await pipeline.read_model()
        return "e1" in read_model

    await wait_until(materialized, 30, "the read model")
    assert read_model["e1"] == state
    # Faust's directories go to a temporary dir, not (Faust's default) the working dir
    assert not list(REPO.glob(f"{t.prefix}*")), "the worker wrote into its working directory"


async def test_duplicate_op_gives_duplicate_receipt_and_no_state_change(
    pipeline: Pipeline,
) -> None:
    t = pipeline.topics
    pipeline.worker()
    op = op_record(
        op_id="d1", client_id="ca", entity_id="e9", hlc=hlc(5000, "ca"), fields={"title": "once"}
    )
    await produce_ops(pipeline.bootstrap, t.ops, [op])
    async with TopicReader(pipeline.bootstrap, t.receipts) as receipts:
        await receipts.wait_for(lambda rs: len(rs) >= 1, 60, "the first receipt")
        await produce_ops(pipeline.bootstrap, t.ops, [op])
        await receipts.wait_for(lambda rs: len(rs) >= 2, 30, "the second receipt")
        first, second = receipts.values()
    assert (first["status"], first["version"]) == ("applied", 1)
    assert (second["status"], second["version"]) == ("duplicate", 1)
    async with TopicReader(pipeline.bootstrap, t.entities) as entities:
        await entities.wait_for(lambda rs: len(rs) >= 1, 30, "the state")
        assert {v["version"] for v in entities.values()} == {1}
        assert entities.latest_by_key()[key_of(op)] == fold([op])["acme/tasks/e9"]
    async with TopicReader(pipeline.bootstrap, t.conflicts) as conflicts:
        assert await conflicts.poll() == []


async def test_poison_records_go_to_dlq_and_agent_carries_on(pipeline: Pipeline) -> None:
    t = pipeline.topics
    worker = pipeline.worker()
    good = op_record(op_id="g1", client_id="ca", entity_id="e1", hlc=hlc(1, "ca"), fields={"x": 1})
    shapeless = {k: v for k, v in good.items() if k != "hlc"}
    await produce(
        pipeline.bootstrap,
        t.ops,
        [
            (b"acme/tasks/e1", b"\xff not json"),
            (b"acme/tasks/e1", orjson.dumps(shapeless)),
            (b"acme/tasks/other", orjson.dumps(good)),
            (b"acme/tasks/e1", None),
            (key_of(good), orjson.dumps(good)),
        ],
    )
    async with TopicReader(pipeline.bootstrap, t.ops_dlq) as dlq:
        await dlq.wait_for(lambda rs: len(rs) >= 4, 60, "four DLQ records")
        parked = dlq.values()
    reasons = " | ".join(p["reason"] for p in parked)
    assert "not UTF-8 JSON" in reasons
    assert "missing keys ['hlc']" in reasons
    assert "is not the entity key" in reasons
    assert "tombstone" in reasons
    assert all(p["source_topic"] == t.ops for p in parked)
    values = [None if p["value"] is None else base64.b64decode(p["value"]) for p in parked]
    assert b"\xff not json" in values
    assert None in values
    assert {p["key"] for p in parked} == {"acme/tasks/e1", "acme/tasks/other"}
    async with TopicReader(pipeline.bootstrap, t.receipts) as receipts:
        await receipts.wait_for(lambda rs: len(rs) >= 1, 30, "the good op's receipt")
        assert [r["op_id"] for r in receipts.values()] == ["g1"]
    assert worker.alive()
    metrics = worker.metrics()
    assert metrics['syncpipe_streams_dlq_records_total{reason="not_json"}'] == 1
    assert metrics['syncpipe_streams_dlq_records_total{reason="bad_shape"}'] == 1
    assert metrics['syncpipe_streams_dlq_records_total{reason="bad_key"}'] == 1
    assert metrics['syncpipe_streams_dlq_records_total{reason="empty"}'] == 1
    assert metrics['syncpipe_streams_ops_applied_total{status="applied"}'] == 1
    assert metrics["syncpipe_streams_apply_latency_seconds_count"] == 1
