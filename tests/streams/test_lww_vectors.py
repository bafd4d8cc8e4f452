"""streams/lww.py against the shared vectors in schemas/vectors/lww.json.

The vectors are the oracle shared with the TypeScript implementation; their expected
values were worked out by hand. This file also checks the vector file itself: enough
cases, every status and rule covered, convergence pairs consistent, and every JSON shape
valid under the contract's JSON Schemas.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from schemas.hlc import HLC_PATTERN
from streams.lww import EntityRecord, Op, apply, public_state

ROOT = Path(__file__).resolve().parents[2]
VECTORS_PATH = ROOT / "schemas" / "vectors" / "lww.json"
SCHEMA_DIR = ROOT / "schemas" / "json"
DOC: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = DOC["cases"]
BY_NAME = {case["name"]: case for case in CASES}


def canonical(value: Any) -> str:
    """JSON text with sorted keys: unlike ==, tells true from 1 and 1 from 1.0."""
    return json.dumps(value, sort_keys=True)


def run(case: dict[str, Any]) -> tuple[EntityRecord | None, list[dict[str, Any]]]:
    """Apply the case's ops in order; return the final record and every ApplyResult dict."""
    initial = case["initial"]
    record = None if initial is None else EntityRecord.from_dict(initial)
    results = []
    for op in case["ops"]:
        result = apply(record, Op.from_dict(op))
        record = result.record
        results.append(result.to_dict())
    return record, results


def observed(case: dict[str, Any]) -> dict[str, Any]:
    record, results = run(case)
    keys = ("op_id", "status", "version", "lost_fields")
    return {
        "state": None if record is None else public_state(record),
        "receipts": [{k: r["receipt"][k] for k in keys} for r in results],
        "conflicts": [
            {k: r["conflict"][k] for k in ("op_id", "client_id", "fields")}
            for r in results
            if r["conflict"] is not None
        ],
    }


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_lww_matches_vector(case: dict[str, Any]) -> None:
    got, expected = observed(case), case["expected"]
    assert got["state"] == expected["state"]
    assert got["receipts"] == expected["receipts"]
    assert got["conflicts"] == expected["conflicts"]
    assert canonical(got) == canonical(expected)


def test_vectors_file_has_description_and_enough_uniquely_named_cases() -> None:
    assert list(DOC)[:1] == ["description"]
    assert DOC["format_version"] == 1
    assert len(CASES) >= 45
    names = [case["name"] for case in CASES]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in names)
    key_order = ["name", "description", "rules", "same_content_as", "initial", "ops", "expected"]
    assert all(list(case) == key_order for case in CASES)


def test_vectors_cover_every_status_and_rule() -> None:
    receipts = [r for case in CASES for r in case["expected"]["receipts"]]
    kinds = {
        (op["kind"], r["status"])
        for case in CASES
        for op, r in zip(case["ops"], case["expected"]["receipts"], strict=True)
    }
    assert {r["status"] for r in receipts} == {
        "applied",
        "partial",
        "stale",
        "duplicate",
        "invalid",
    }
    for kind in ("upsert", "delete"):
        for status in ("applied", "partial", "stale", "duplicate", "invalid"):
            assert (kind, status) in kinds
    tagged = {rule for case in CASES for rule in case["rules"]}
    assert tagged == set(DOC["rules"]) == {f"R{i}" for i in range(1, 9)}
    assert any(r["status"] == "invalid" and r["version"] is None for r in receipts)


def test_vectors_cover_conflicts_against_and_by_deletes() -> None:
    entries = [
        f
        for case in CASES
        for conflict in case["expected"]["conflicts"]
        for f in conflict["fields"].values()
    ]
    assert any(f["winner"]["deleted"] for f in entries), "upsert lost to a delete"
    assert any(f["yours"]["deleted"] for f in entries), "delete lost to a newer upsert"
    states = [case["expected"]["state"] for case in CASES]
    assert any(s and s["deleted_hlc"] and not s["deleted"] for s in states), "resurrection"
    assert any(case["initial"] is None and case["ops"][0]["kind"] == "delete" for case in CASES), (
        "tombstone for a missing entity"
    )


def content_of(state: dict[str, Any] | None) -> str:
    if state is None:
        return canonical(None)
    keys = ("fields", "deleted_hlc", "deleted_by", "deleted_op_id")
    return canonical({k: state[k] for k in keys})


PAIRS = [case for case in CASES if case["same_content_as"] is not None]


@pytest.mark.parametrize("case", PAIRS, ids=[case["name"] for case in PAIRS])
def test_vector_convergence_pair_has_same_ops_and_content(case: dict[str, Any]) -> None:
    other = BY_NAME[case["same_content_as"]]
    assert other["same_content_as"] == case["name"]
    assert canonical(case["initial"]) == canonical(other["initial"])
    assert sorted(map(canonical, case["ops"])) == sorted(map(canonical, other["ops"]))
    assert content_of(case["expected"]["state"]) == content_of(other["expected"]["state"])


@cache
def validator(name: str) -> Draft202012Validator:
    docs = [json.loads(p.read_text(encoding="utf-8")) for p in SCHEMA_DIR.glob("*.json")]
    resources = [(doc["$id"], Resource.from_contents(doc)) for doc in docs]
    resources += [
        (p.name, Resource.from_contents(doc))
        for p, doc in zip(SCHEMA_DIR.glob("*.json"), docs, strict=True)
    ]
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, registry=Registry().with_resources(resources))


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_vector_shapes_follow_the_json_schemas(case: dict[str, Any]) -> None:
    state_schema = validator("entity_state.schema.json")
    if case["initial"] is not None:
        initial = {k: v for k, v in case["initial"].items() if k != "applied_op_ids"}
        state_schema.validate(initial)
    if case["expected"]["state"] is not None:
        state_schema.validate(case["expected"]["state"])
    _, results = run(case)
    for op, result in zip(case["ops"], results, strict=True):
        if result["receipt"]["status"] != "invalid":  # invalid ops break the schema on purpose
            validator("op_record.schema.json").validate(op)
        if re.fullmatch(HLC_PATTERN, op["hlc"]):  # a receipt echoes the op's hlc
            validator("receipt.schema.json").validate(result["receipt"])
        if result["conflict"] is not None:
            validator("conflict.schema.json").validate(result["conflict"])
