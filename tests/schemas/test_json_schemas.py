"""The JSON Schemas are valid 2020-12, and the generated models agree with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError
from referencing import Registry, Resource

from schemas import limits
from schemas.generated.entity_state_schema import EntityState
from schemas.generated.op_batch_schema import OpBatch
from schemas.generated.op_record_schema import OpRecord
from schemas.generated.op_schema import Op

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"
SCHEMA_FILES = sorted(SCHEMA_DIR.glob("*.schema.json"))


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def _registry() -> Registry:
    resources = [(p.name, Resource.from_contents(_load(p))) for p in SCHEMA_FILES]
    resources += [(str(_load(p)["$id"]), Resource.from_contents(_load(p))) for p in SCHEMA_FILES]
    return Registry().with_resources(resources)


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(_load(SCHEMA_DIR / name), registry=_registry())


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_is_valid_draft_2020_12_with_matching_id(path: Path) -> None:
    doc = _load(path)
    Draft202012Validator.check_schema(doc)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["$id"].endswith("/" + path.name)
    assert doc.get("title"), "every schema needs a title (it names the generated type)"


def test_contract_covers_every_named_type() -> None:
    names = {p.name.removesuffix(".schema.json") for p in SCHEMA_FILES}
    assert {
        "op",
        "op_batch",
        "op_result",
        "op_batch_result",
        "field_register",
        "entity_state",
        "conflict",
        "receipt",
        "dlq_record",
        "push",
        "op_record",
    } <= names


def test_size_limits_in_schemas_match_limits_module() -> None:
    assert _load(SCHEMA_DIR / "op.schema.json")["x-syncpipe-max-bytes"] == limits.MAX_OP_BYTES
    batch = _load(SCHEMA_DIR / "op_batch.schema.json")
    assert batch["x-syncpipe-max-bytes"] == limits.MAX_BATCH_BYTES
    assert batch["properties"]["ops"]["maxItems"] == limits.MAX_BATCH_OPS
    op_fields = _load(SCHEMA_DIR / "op.schema.json")["properties"]["fields"]
    assert op_fields["maxProperties"] == limits.MAX_FIELDS_PER_OP
    common = _load(SCHEMA_DIR / "common.schema.json")["$defs"]
    assert common["EntityId"]["maxLength"] == limits.MAX_ENTITY_ID_CHARS


HLC = "001700000000000-0000-phone-1"


def op(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "op_id": "op-1",
        "client_id": "phone-1",
        "collection": "tasks",
        "entity_id": "t1",
        "kind": "upsert",
        "fields": {"title": "Buy oat milk", "done": False},
        "hlc": HLC,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not _DROP}


_DROP = object()

OP_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("upsert", op(), True),
    ("delete-without-fields", op(kind="delete", fields=_DROP), True),
    ("nested-json-values", op(fields={"tags": ["a", {"b": None}], "n": 1.5}), True),
    ("collection-64-chars", op(collection="a" + "b" * 63), True),
    ("entity-id-128-chars", op(entity_id="e" * 128), True),
    ("64-fields", op(fields={f"f{i}": i for i in range(64)}), True),
    ("collection-uppercase", op(collection="Tasks"), False),
    ("collection-leading-digit", op(collection="1tasks"), False),
    ("collection-65-chars", op(collection="a" * 65), False),
    ("entity-id-empty", op(entity_id=""), False),
    ("entity-id-129-chars", op(entity_id="e" * 129), False),
    ("65-fields", op(fields={f"f{i}": i for i in range(65)}), False),
    ("empty-fields", op(fields={}), False),
    ("bad-field-name", op(fields={"no spaces": 1}), False),
    ("unknown-kind", op(kind="patch"), False),
    ("malformed-hlc", op(hlc="12-zz-node"), False),
    ("missing-op-id", op(op_id=_DROP), False),
    ("extra-property", op(tenant="acme"), False),
]


@pytest.mark.parametrize(("doc", "valid"), [c[1:] for c in OP_CASES], ids=[c[0] for c in OP_CASES])
def test_op_schema_and_generated_model_agree(doc: dict[str, Any], valid: bool) -> None:
    assert validator("op.schema.json").is_valid(doc) is valid
    if valid:
        assert Op.model_validate(doc).model_dump(mode="json", exclude_unset=True) == doc
    else:
        with pytest.raises(ValidationError):
            Op.model_validate(doc)


def test_op_record_adds_tenant_user_and_receive_time() -> None:
    record = {**op(), "tenant": "acme", "user_id": "alice", "received_at_ms": 1_700_000_000_000}
    assert validator("op_record.schema.json").is_valid(record)
    assert OpRecord.model_validate(record).tenant == "acme"
    assert not validator("op_record.schema.json").is_valid(op())


@pytest.mark.parametrize(("count", "valid"), [(1, True), (500, True), (0, False), (501, False)])
def test_op_batch_holds_1_to_500_ops(count: int, valid: bool) -> None:
    doc = {"ops": [op(op_id=f"op-{i}") for i in range(count)]}
    assert validator("op_batch.schema.json").is_valid(doc) is valid
    if not valid:
        with pytest.raises(ValidationError):
            OpBatch.model_validate(doc)


def entity_state() -> dict[str, Any]:
    return {
        "tenant": "acme",
        "collection": "tasks",
        "entity_id": "t1",
        "version": 3,
        "fields": {
            "title": {"value": "Buy oat milk", "hlc": HLC, "client_id": "phone-1", "op_id": "op-1"}
        },
        "deleted_hlc": None,
        "deleted_by": None,
        "deleted_op_id": None,
        "deleted": False,
        "last_op_id": "op-1",
        "received_at_ms": 1_700_000_000_000,
    }


@pytest.mark.parametrize(
    ("mutate", "valid"),
    [
        (lambda d: d, True),
        (lambda d: d.update(version=0), False),
        (lambda d: d["fields"]["title"].pop("hlc"), False),
        (lambda d: d.update(deleted_hlc="yesterday"), False),
    ],
    ids=["valid", "version-zero", "register-without-hlc", "bad-deleted-hlc"],
)
def test_entity_state_schema_and_model_agree(mutate: Any, valid: bool) -> None:
    doc = entity_state()
    mutate(doc)
    assert validator("entity_state.schema.json").is_valid(doc) is valid
    model: type[BaseModel] = EntityState
    if valid:
        assert model.model_validate(doc).model_dump(mode="json") == doc
    else:
        with pytest.raises(ValidationError):
            model.model_validate(doc)


def test_generated_models_are_immutable() -> None:
    model = Op.model_validate(op())
    with pytest.raises(ValidationError):
        model.op_id = "other"  # type: ignore[misc]
