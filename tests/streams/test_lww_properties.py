"""Property tests of the LWW core: convergence, idempotence, versions, receipts.

Ops come from 2-3 clients over one entity, with tiny field-name, value and wall-time
alphabets so that writes collide often. Each op has a unique HLC (a client never reuses
one; the node is the client id), which is what the convergence guarantee assumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.lww import ApplyResult, EntityRecord, Op, apply, content

SETTINGS = settings(max_examples=500, deadline=None)
CLIENTS = ("a", "b", "c")
FIELDS = ("x", "y", "z")
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 2),
    st.sampled_from(["s", "t"]),
    st.lists(st.integers(0, 1), max_size=2),
    st.dictionaries(st.sampled_from(["k"]), st.integers(0, 1), max_size=1),
)


@st.composite
def op_lists(draw: st.DrawFn) -> list[Op]:
    clients = CLIENTS[: draw(st.integers(2, 3))]
    specs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(clients),
                st.integers(0, 3),  # wall_ms
                st.integers(0, 1),  # counter
                st.sampled_from(["upsert", "upsert", "upsert", "delete"]),
                st.dictionaries(st.sampled_from(FIELDS), values, min_size=1, max_size=3),
            ),
            min_size=1,
            max_size=12,
            unique_by=lambda spec: (spec[0], spec[1], spec[2]),  # unique hlc per client
        )
    )
    return [
        Op(
            op_id=f"op-{i}",
            client_id=client,
            collection="tasks",
            entity_id="e1",
            kind="upsert" if kind == "upsert" else "delete",
            fields=fields if kind == "upsert" else None,
            hlc=f"{wall:015d}-{counter:04x}-{client}",
            tenant="t1",
            user_id=f"user-{client}",
            received_at_ms=1000 + i,
        )
        for i, (client, wall, counter, kind, fields) in enumerate(specs)
    ]


def fold(
    ops: Sequence[Op], record: EntityRecord | None = None
) -> tuple[EntityRecord | None, list[ApplyResult]]:
    results = []
    for op in ops:
        result = apply(record, op)
        record = result.record
        results.append(result)
    return record, results


def reference_content(ops: Sequence[Op]) -> dict[str, Any] | None:
    """The merge as a function of the set of ops: the greatest delete wins, and each field
    holds its greatest write if that is newer than the winning delete."""
    if not ops:
        return None
    deletes = [op for op in ops if op.kind == "delete"]
    winner_delete = max(deletes, key=lambda op: op.hlc) if deletes else None
    best: dict[str, tuple[Op, Any]] = {}
    for op in ops:
        for name, value in (op.fields or {}).items():
            if name not in best or op.hlc > best[name][0].hlc:
                best[name] = (op, value)
    floor = winner_delete.hlc if winner_delete else ""
    fields = {
        name: {"value": value, "hlc": op.hlc, "client_id": op.client_id, "op_id": op.op_id}
        for name, (op, value) in sorted(best.items())
        if op.hlc > floor
    }
    return {
        "fields": fields,
        "deleted_hlc": winner_delete.hlc if winner_delete else None,
        "deleted_by": winner_delete.client_id if winner_delete else None,
        "deleted_op_id": winner_delete.op_id if winner_delete else None,
    }


@given(op_lists(), st.data())
@SETTINGS
def test_content_is_independent_of_arrival_order(ops: list[Op], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(ops), label="arrival order")
    given_order, _ = fold(ops)
    other_order, _ = fold(shuffled)
    assert content(given_order) == content(other_order) == reference_content(ops)


@given(op_lists(), st.data())
@SETTINGS
def test_content_after_every_step_is_the_merge_of_the_ops_seen(
    ops: list[Op], data: st.DataObject
) -> None:
    arrival = data.draw(st.permutations(ops), label="arrival order")
    record = None
    for seen in range(1, len(arrival) + 1):
        record = apply(record, arrival[seen - 1]).record
        assert content(record) == reference_content(arrival[:seen])


@given(op_lists(), st.data())
@SETTINGS
def test_merging_two_batches_in_either_order_gives_the_merge_of_both(
    ops: list[Op], data: st.DataObject
) -> None:
    split = data.draw(st.integers(0, len(ops)), label="split")
    first, second = ops[:split], ops[split:]
    one_then_two, _ = fold(second, fold(first)[0])
    two_then_one, _ = fold(first, fold(second)[0])
    assert content(one_then_two) == content(two_then_one) == reference_content(ops)


@given(op_lists())
@SETTINGS
def test_reapplying_any_applied_op_changes_nothing(ops: list[Op]) -> None:
    record = None
    for i, op in enumerate(ops):
        record = apply(record, op).record
        assert record is not None
        for earlier in ops[: i + 1]:
            again = apply(record, earlier)
            assert again.record is record
            assert again.receipt.status == "duplicate"
            assert again.receipt.version == record.version
            assert again.conflict is None
            assert not again.changed
    replayed, results = fold(ops, record)
    assert replayed is record
    assert {r.receipt.status for r in results} == {"duplicate"}


@given(op_lists())
@SETTINGS
def test_version_increases_exactly_when_content_changes(ops: list[Op]) -> None:
    record: EntityRecord | None = None
    for op in ops:
        result = apply(record, op)
        before = 0 if record is None else record.version
        assert result.record is not None
        after = result.record.version
        assert after == before + (1 if result.changed else 0)
        assert result.receipt.version == after
        assert result.changed == (content(result.record) != content(record))
        assert result.changed == (result.receipt.status in ("applied", "partial"))
        if result.changed:
            assert result.record.last_op_id == op.op_id
            assert result.record.received_at_ms == op.received_at_ms
        else:
            assert record is not None
            assert result.record.last_op_id == record.last_op_id
        assert result.record.applied_op_ids[-1] == op.op_id
        record = result.record


def _winner_client(before: EntityRecord | None, op: Op, name: str) -> str:
    """Which client's write beat ``op`` on field ``name`` (the rules, restated)."""
    assert before is not None
    if op.kind == "delete":
        return before.fields[name].client_id
    if before.deleted_hlc is not None and op.hlc <= before.deleted_hlc:
        assert before.deleted_by is not None
        return before.deleted_by
    return before.fields[name].client_id


@given(op_lists(), st.data())
@SETTINGS
def test_receipts_and_conflicts_are_consistent_with_lost_fields(
    ops: list[Op], data: st.DataObject
) -> None:
    record: EntityRecord | None = None
    for op in data.draw(st.permutations(ops), label="arrival order"):
        result = apply(record, op)
        receipt, conflict, after = result.receipt, result.conflict, result.record
        assert after is not None
        lost = list(receipt.lost_fields)
        assert lost == sorted(set(lost))
        assert receipt.reason is None
        if receipt.status == "applied":
            assert lost == []
        if receipt.status == "partial":
            assert lost
        if op.kind == "upsert":
            assert op.fields is not None
            assert set(lost) <= set(op.fields)
            if receipt.status == "partial":
                assert set(lost) < set(op.fields)
            if receipt.status == "stale":
                assert lost == sorted(op.fields)
            kept = set(op.fields) - set(lost)
            assert all(after.fields[name].op_id == op.op_id for name in kept)
        elif receipt.status == "stale":
            assert record is not None
            assert lost == sorted(record.fields)
            assert after.deleted_hlc == record.deleted_hlc
        else:
            assert after.deleted_op_id == op.op_id
            assert lost == sorted(after.fields)
            assert all(reg.hlc >= op.hlc for reg in after.fields.values())
        expected = {
            name
            for name in lost
            if not (op.kind == "delete" and receipt.status == "stale")
            and _winner_client(record, op, name) != op.client_id
        }
        if conflict is None:
            assert expected == set()
        else:
            assert receipt.status in ("partial", "stale")
            assert set(conflict.fields) == expected
            assert conflict.version == receipt.version
            assert conflict.client_id == op.client_id
            for entry in conflict.fields.values():
                assert entry.winner.client_id != op.client_id
                assert entry.yours.hlc == op.hlc
                assert entry.yours.deleted == (op.kind == "delete")
                assert entry.winner.hlc >= op.hlc
        record = after
