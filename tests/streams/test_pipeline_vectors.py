"""The shared LWW vectors, run through the real pipeline instead of calling ``apply``.

Every vector that starts from a missing entity is replayed on the ops topic (each case
under its own tenant, so cases never share an entity); the worker's receipts, conflicts
and final state must be what the vector says.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.streams.conftest import Pipeline
from tests.streams.helpers import TopicReader, produce_ops

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas/vectors/lww.json").read_text("utf-8")
)
CASES = [c for c in VECTORS["cases"] if c["initial"] is None]


def _retenant(value: Any, tenant: str) -> Any:
    if isinstance(value, dict):
        return {k: tenant if k == "tenant" else _retenant(v, tenant) for k, v in value.items()}
    if isinstance(value, list):
        return [_retenant(v, tenant) for v in value]
    return value


async def test_vectors_through_worker_match_expected(pipeline: Pipeline) -> None:
    assert len(CASES) >= 20
    pipeline.worker()
    cases = {f"v{i}": _retenant(case, f"v{i}") for i, case in enumerate(CASES)}
    ops = [op for case in cases.values() for op in case["ops"]]
    await produce_ops(pipeline.bootstrap, pipeline.topics.ops, ops)

    async with TopicReader(pipeline.bootstrap, pipeline.topics.receipts) as reader:
        await reader.wait_for(lambda rs: len(rs) >= len(ops), 90, f"{len(ops)} receipts")
        receipts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in sorted(reader.records, key=lambda r: (r.partition, r.offset)):
            doc = json.loads(r.value)
            receipts[doc["tenant"]].append(doc)
    async with TopicReader(pipeline.bootstrap, pipeline.topics.conflicts) as reader:
        expected_conflicts = sum(len(c["expected"]["conflicts"]) for c in cases.values())
        await reader.wait_for(
            lambda rs: len(rs) >= expected_conflicts, 30, f"{expected_conflicts} conflicts"
        )
        conflicts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for doc in reader.values():
            conflicts[doc["tenant"]].append(doc)
    async with TopicReader(pipeline.bootstrap, pipeline.topics.entities) as reader:
        with_state = sum(c["expected"]["state"] is not None for c in cases.values())
        await reader.wait_for(
            lambda rs: len({r.key for r in rs}) >= with_state, 30, "every entity state"
        )
        states = {doc["tenant"]: doc for doc in reader.latest_by_key().values()}

    for tenant, case in cases.items():
        expected = case["expected"]
        name = CASES[int(tenant[1:])]["name"]
        keys = ("op_id", "status", "version", "lost_fields")
        # receipts of one client keep their order; across clients compare as a multiset
        got_receipts = [{k: r[k] for k in keys} for r in receipts[tenant]]
        want = expected["receipts"]
        assert sorted(map(json.dumps, got_receipts)) == sorted(map(json.dumps, want)), name
        got_conflicts = [
            {k: c[k] for k in ("op_id", "client_id", "fields")} for c in conflicts[tenant]
        ]
        assert sorted(map(json.dumps, got_conflicts)) == sorted(
            map(json.dumps, expected["conflicts"])
        ), name
        assert states.get(tenant) == expected["state"], name
