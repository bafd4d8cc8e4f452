"""Unit tests for what the shared vectors do not express well: JSON round trips, input
errors, the dedupe window, public state, and apply never raising."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.lww import (
    DEDUPE_WINDOW,
    ApplyResult,
    Conflict,
    EntityRecord,
    LwwInputError,
    Op,
    Receipt,
    Register,
    apply,
    content,
    public_state,
)


def hlc(wall: int, node: str = "phone", counter: int = 0) -> str:
    return f"{wall:015d}-{counter:04x}-{node}"


def op_dict(
    op_id: str = "op-1",
    client: str = "phone",
    wall: int = 1,
    fields: dict[str, Any] | None = None,
    kind: str = "upsert",
    **over: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "op_id": op_id,
        "client_id": client,
        "collection": "tasks",
        "entity_id": "task-1",
        "kind": kind,
        "fields": {"title": "x"} if fields is None and kind == "upsert" else fields,
        "hlc": hlc(wall, client),
        "tenant": "acme",
        "user_id": "alice",
        "received_at_ms": 1_700_000_000_000 + wall,
    }
    data.update(over)
    return data


def make_op(**kwargs: Any) -> Op:
    return Op.from_dict(op_dict(**kwargs))


def record_dict(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tenant": "acme",
        "collection": "tasks",
        "entity_id": "task-1",
        "version": 2,
        "fields": {
            "title": {
                "value": {"a": [1, None]},
                "hlc": hlc(5, "tablet"),
                "client_id": "tablet",
                "op_id": "o5",
            },
        },
        "deleted_hlc": hlc(3, "laptop"),
        "deleted_by": "laptop",
        "deleted_op_id": "d3",
        "deleted": False,
        "last_op_id": "o5",
        "received_at_ms": 42,
        "applied_op_ids": ["d3", "o5"],
    }
    data.update(over)
    return data


# ---------------------------------------------------------------- round trips


def test_record_round_trips_through_json_shape() -> None:
    data = record_dict()
    record = EntityRecord.from_dict(data)
    assert record.to_dict() == data
    assert EntityRecord.from_dict(record.to_dict()) == record
    assert record.fields["title"] == Register({"a": [1, None]}, hlc(5, "tablet"), "tablet", "o5")


def test_record_from_entity_state_without_applied_op_ids() -> None:
    data = record_dict()
    del data["applied_op_ids"]
    assert EntityRecord.from_dict(data).applied_op_ids == ()


@pytest.mark.parametrize(
    "data",
    [op_dict(), op_dict(kind="delete"), op_dict(fields={"a": None, "b": [1, {"c": True}]})],
    ids=["upsert", "delete", "nested_values"],
)
def test_op_round_trips_through_json_shape(data: dict[str, Any]) -> None:
    op = Op.from_dict(data)
    assert op.to_dict() == data
    assert Op.from_dict(op.to_dict()) == op


def test_op_without_fields_key_parses_as_none() -> None:
    data = op_dict(kind="delete")
    del data["fields"]
    assert Op.from_dict(data).fields is None


def test_results_round_trip_through_json_shape() -> None:
    record = EntityRecord.from_dict(record_dict())
    result = apply(record, make_op(op_id="late", client="phone", wall=4, fields={"title": "p"}))
    assert result.conflict is not None
    assert ApplyResult.from_dict(result.to_dict()) == result
    assert Receipt.from_dict(result.receipt.to_dict()) == result.receipt
    assert Conflict.from_dict(result.conflict.to_dict()) == result.conflict
    invalid = apply(None, make_op(fields={}))
    assert ApplyResult.from_dict(invalid.to_dict()) == invalid


def test_receipt_and_conflict_carry_the_op_metadata_and_version_after() -> None:
    record = EntityRecord.from_dict(record_dict())
    op = make_op(op_id="late", client="phone", wall=6, fields={"title": "old", "note": "n"})
    op = Op.from_dict({**op.to_dict(), "fields": {"title": "p", "note": "n"}, "hlc": hlc(4)})
    result = apply(record, op)
    assert result.receipt.to_dict() == {
        "op_id": "late",
        "tenant": "acme",
        "client_id": "phone",
        "user_id": "alice",
        "collection": "tasks",
        "entity_id": "task-1",
        "kind": "upsert",
        "hlc": hlc(4),
        "status": "partial",
        "version": 3,
        "lost_fields": ["title"],
        "reason": None,
        "received_at_ms": op.received_at_ms,
    }
    assert result.conflict is not None
    assert result.conflict.to_dict() == {
        "op_id": "late",
        "tenant": "acme",
        "client_id": "phone",
        "user_id": "alice",
        "collection": "tasks",
        "entity_id": "task-1",
        "kind": "upsert",
        "hlc": hlc(4),
        "version": 3,
        "received_at_ms": op.received_at_ms,
        "fields": {
            "title": {
                "yours": {"value": "p", "hlc": hlc(4), "deleted": False},
                "winner": {
                    "value": {"a": [1, None]},
                    "hlc": hlc(5, "tablet"),
                    "client_id": "tablet",
                    "op_id": "o5",
                    "deleted": False,
                },
            }
        },
    }


# ---------------------------------------------------------------- from_dict errors


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object, got list"),
        (_without(record_dict(), "version"), "missing keys ['version']"),
        (record_dict(extra=1), "unknown keys ['extra']"),
        (record_dict(version=0), "'version' must be an integer >= 1"),
        (record_dict(version=True), "'version' must be an integer >= 1"),
        (record_dict(version="2"), "'version' must be an integer >= 1"),
        (record_dict(tenant=None), "'tenant' must be a string"),
        (record_dict(fields=[]), "'fields' must be a JSON object"),
        (record_dict(fields={"t": {"value": 1}}), "field 't': missing keys"),
        (
            record_dict(fields={"t": {"value": 1, "hlc": "x", "client_id": "c", "op_id": "o"}}),
            "'hlc': invalid hlc 'x'",
        ),
        (record_dict(deleted_hlc="bad"), "'deleted_hlc': invalid hlc 'bad'"),
        (record_dict(deleted_by=None), "must be all set or all null"),
        (record_dict(deleted="no"), "'deleted' must be a boolean"),
        (record_dict(deleted=True), "'deleted' is True but must be False"),
        (record_dict(applied_op_ids=[1]), "'applied_op_ids' must be a list of strings"),
        (record_dict(received_at_ms=-1), "'received_at_ms' must be an integer >= 0"),
    ],
    ids=[
        "not_object",
        "missing_key",
        "unknown_key",
        "version_zero",
        "version_bool",
        "version_string",
        "tenant_null",
        "fields_not_object",
        "register_missing_keys",
        "register_bad_hlc",
        "deleted_hlc_bad",
        "deletion_half_set",
        "deleted_not_bool",
        "deleted_flag_inconsistent",
        "applied_op_ids_not_strings",
        "received_negative",
    ],
)
def test_record_from_dict_rejects_bad_input_clearly(data: Any, message: str) -> None:
    with pytest.raises(LwwInputError, match="entity") as excinfo:
        EntityRecord.from_dict(data)
    assert message in str(excinfo.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (op_dict(kind="merge"), "'kind' must be one of ['upsert', 'delete']"),
        ({**op_dict(), "fields": ["title"]}, "'fields' must be a JSON object"),
        (op_dict(hlc=7), "'hlc' must be a string"),
        (op_dict(received_at_ms=1.5), "'received_at_ms' must be an integer"),
        (_without(op_dict(), "tenant"), "missing keys ['tenant']"),
        (op_dict(bogus=True), "unknown keys ['bogus']"),
    ],
    ids=["bad_kind", "fields_list", "hlc_not_string", "received_float", "no_tenant", "unknown"],
)
def test_op_from_dict_rejects_bad_shape_clearly(data: dict[str, Any], message: str) -> None:
    with pytest.raises(LwwInputError, match=r"^op: ") as excinfo:
        Op.from_dict(data)
    assert message in str(excinfo.value)


def test_op_from_dict_leaves_lww_invariants_to_apply() -> None:
    op = Op.from_dict(op_dict(fields={}, hlc="garbage"))
    assert apply(None, op).receipt.status == "invalid"


def test_conflict_from_dict_requires_a_field() -> None:
    record = EntityRecord.from_dict(record_dict())
    result = apply(record, make_op(wall=2))
    assert result.conflict is not None
    data = result.conflict.to_dict()
    data["fields"] = {}
    with pytest.raises(LwwInputError, match="at least one field"):
        Conflict.from_dict(data)


def test_record_constructor_rejects_half_set_deletion() -> None:
    with pytest.raises(LwwInputError, match="all set or all null"):
        EntityRecord("t", "c", "e", 1, {}, hlc(1), None, None, "o", 0)


# ---------------------------------------------------------------- dedupe window


def test_dedupe_window_keeps_the_most_recent_op_ids_and_evicts_the_oldest() -> None:
    record = apply(None, make_op(op_id="op-0", wall=1)).record
    for i in range(1, DEDUPE_WINDOW + 1):
        record = apply(record, make_op(op_id=f"op-{i}", wall=1 + i)).record
    assert record is not None
    assert len(record.applied_op_ids) == DEDUPE_WINDOW
    assert record.applied_op_ids[0] == "op-1"
    assert record.applied_op_ids[-1] == f"op-{DEDUPE_WINDOW}"
    # op-0 fell out of the window and its register was overwritten: it is judged again,
    # loses to the same client's newer write (stale), and the content does not change.
    again = apply(record, make_op(op_id="op-0", wall=1))
    assert again.receipt.status == "stale"
    assert not again.changed
    assert content(again.record) == content(record)
    assert apply(record, make_op(op_id="op-1", wall=2)).receipt.status == "duplicate"


def test_stale_ops_are_remembered_without_changing_content() -> None:
    record = EntityRecord.from_dict(record_dict())
    result = apply(record, make_op(op_id="old", wall=2))
    assert result.receipt.status == "stale"
    assert result.record is not None
    assert result.record.applied_op_ids == ("d3", "o5", "old")
    assert public_state(result.record) == public_state(record)
    assert not result.changed


# ---------------------------------------------------------------- public state, content


def test_public_state_strips_bookkeeping_only() -> None:
    record = EntityRecord.from_dict(record_dict())
    state = public_state(record)
    assert "applied_op_ids" not in state
    assert state == _without(record.to_dict(), "applied_op_ids")
    assert list(state) == [
        "tenant",
        "collection",
        "entity_id",
        "version",
        "fields",
        "deleted_hlc",
        "deleted_by",
        "deleted_op_id",
        "deleted",
        "last_op_id",
        "received_at_ms",
    ]


def test_content_ignores_version_and_bookkeeping() -> None:
    a = EntityRecord.from_dict(record_dict())
    b = EntityRecord.from_dict(record_dict(version=9, last_op_id="x", applied_op_ids=[]))
    assert content(a) == content(b)
    assert content(None) is None
    assert content(a) == {
        "fields": {"title": record_dict()["fields"]["title"]},
        "deleted_hlc": hlc(3, "laptop"),
        "deleted_by": "laptop",
        "deleted_op_id": "d3",
    }


# ---------------------------------------------------------------- invalid ops


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (op_dict(fields={}), "upsert sets no fields; send at least one field"),
        ({**op_dict(), "fields": None}, "upsert sets no fields"),
        (op_dict(kind="delete", fields={"a": 1}), "delete carries fields; omit 'fields'"),
        (op_dict(kind="delete", fields={}), "delete carries fields"),
        (op_dict(hlc="12-zz"), "invalid hlc '12-zz': expected"),
        (op_dict(hlc=hlc(1, "laptop")), "hlc node 'laptop' is not the client_id 'phone'"),
        (op_dict(entity_id="task-2"), "targets 'acme/tasks/task-2' but was applied to entity"),
        (op_dict(tenant="globex"), "targets 'globex/tasks/task-1'"),
        (op_dict(collection="notes"), "targets 'acme/notes/task-1'"),
    ],
    ids=[
        "empty_fields",
        "null_fields",
        "delete_with_fields",
        "delete_with_empty_fields",
        "malformed_hlc",
        "node_not_client",
        "other_entity",
        "other_tenant",
        "other_collection",
    ],
)
def test_invalid_op_gets_a_reason_and_changes_nothing(data: dict[str, Any], reason: str) -> None:
    record = EntityRecord.from_dict(record_dict())
    before = copy.deepcopy(record.to_dict())
    result = apply(record, Op.from_dict(data))
    assert result.record is record
    assert record.to_dict() == before
    assert result.receipt.status == "invalid"
    assert result.receipt.version == 2
    assert result.receipt.reason is not None
    assert result.receipt.reason.startswith("op 'op-1' rejected: ")
    assert reason in result.receipt.reason
    assert result.conflict is None
    assert not result.changed


def test_invalid_op_on_missing_entity_has_null_version() -> None:
    result = apply(None, make_op(fields={}))
    assert result.record is None
    assert result.receipt.version is None


def test_apply_does_not_mutate_its_inputs() -> None:
    record = EntityRecord.from_dict(record_dict())
    op = make_op(wall=9, fields={"title": "new", "extra": [1]})
    record_before, op_before = copy.deepcopy(record.to_dict()), copy.deepcopy(op.to_dict())
    result = apply(record, op)
    assert result.changed
    assert record.to_dict() == record_before
    assert op.to_dict() == op_before


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=4,
)


@given(
    client=st.sampled_from(["phone", "laptop", "bad node", ""]),
    hlc_text=st.one_of(
        st.text(max_size=30),
        st.builds(hlc, st.integers(0, 5), st.sampled_from(["phone", "laptop", "x"])),
    ),
    kind=st.sampled_from(["upsert", "delete"]),
    fields=st.one_of(st.none(), st.dictionaries(st.text(max_size=3), json_values, max_size=3)),
    entity_id=st.sampled_from(["task-1", "task-2", ""]),
    with_record=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_apply_never_raises_for_well_shaped_ops(
    client: str,
    hlc_text: str,
    kind: str,
    fields: dict[str, Any] | None,
    entity_id: str,
    with_record: bool,
) -> None:
    record = EntityRecord.from_dict(record_dict()) if with_record else None
    data = op_dict(client=client, kind=kind, entity_id=entity_id)
    data.update(hlc=hlc_text, fields=fields)
    result = apply(record, Op.from_dict(data))
    assert result.receipt.status in ("applied", "partial", "stale", "duplicate", "invalid")
    if result.receipt.status == "invalid":
        assert result.record is record
        assert result.receipt.reason


def test_lww_core_imports_no_faust_and_no_io() -> None:
    code = (
        "import sys, streams.lww; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'faust', 'aiokafka', 'redis', 'orjson', 'asyncio', 'socket'}); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""
