"""The pure reconcile step: stored records, and healing what a crashed worker left unproduced.

A worker writes its table before it produces the outputs of an op. Killed in between, it
gets the op again after restart, where it is a ``duplicate``: the Reconciler must then emit
the entity state and the conflict that were lost, so that at-least-once holds for every
output. The table here is a plain dict, as the worker's in-memory table is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.lww import EntityRecord, LwwInputError, Op, public_state
from streams.processing import (
    CONFLICT_MEMORY,
    RECENT_CONFLICTS,
    Outcome,
    Reconciler,
    parse_stored,
    serialize_stored,
)

KEY = b"acme/tasks/task-1"


def hlc(wall: int, node: str, counter: int = 0) -> str:
    return f"{wall:015d}-{counter:04x}-{node}"


def make_op(
    op_id: str,
    client: str,
    wall: int,
    fields: dict[str, Any] | None = None,
    kind: str = "upsert",
) -> Op:
    return Op.from_dict(
        {
            "op_id": op_id,
            "client_id": client,
            "collection": "tasks",
            "entity_id": "task-1",
            "kind": kind,
            "fields": ({"title": op_id} if fields is None else fields)
            if kind == "upsert"
            else None,
            "hlc": hlc(wall, client),
            "tenant": "acme",
            "user_id": f"user-{client}",
            "received_at_ms": 1_700_000_000_000 + wall,
        }
    )


@dataclass
class Worker:
    """The reconcile agent's loop without Faust: table first, then the outputs."""

    table: dict[bytes, bytes] = field(default_factory=dict)
    reconciler: Reconciler = field(default_factory=Reconciler)
    states: list[bytes] = field(default_factory=list)
    conflicts: list[bytes] = field(default_factory=list)

    def process(self, op: Op, *, crash_before_outputs: bool = False) -> Outcome:
        out = self.reconciler.reconcile(op, self.table.get)
        if out.stored is not None:
            self.table[out.key] = out.stored
        if not crash_before_outputs:
            if out.state is not None:
                self.states.append(out.state)
            if out.conflict is not None:
                self.conflicts.append(out.conflict)
        return out

    def restart(self) -> None:
        """A new process: the table is recovered (same bytes), every cache is gone."""
        self.table = {k: bytes(v) for k, v in self.table.items()}
        self.reconciler = Reconciler()


def conflict_ids(conflicts: list[bytes]) -> list[str]:
    return [orjson.loads(c)["op_id"] for c in conflicts]


@pytest.mark.parametrize("restart", [False, True], ids=["same-process", "after-restart"])
def test_redelivered_op_whose_conflict_was_lost_emits_it_again(restart: bool) -> None:
    worker = Worker()
    worker.process(make_op("laptop-1", "laptop", wall=20))
    lost = worker.process(make_op("phone-1", "phone", wall=10), crash_before_outputs=True)
    assert lost.status == "stale"
    assert lost.conflict is not None
    assert worker.conflicts == []
    if restart:
        worker.restart()

    again = worker.process(make_op("phone-1", "phone", wall=10))

    assert again.status == "duplicate"
    assert again.stored is None, "a duplicate never rewrites the table"
    assert worker.conflicts == [lost.conflict], "the same conflict, byte for byte"
    conflict = orjson.loads(worker.conflicts[0])
    assert conflict["fields"]["title"]["winner"]["op_id"] == "laptop-1"


def test_partial_op_whose_outputs_were_lost_reemits_state_and_conflict() -> None:
    worker = Worker()
    worker.process(make_op("laptop-1", "laptop", wall=20, fields={"title": "a"}))
    lost = worker.process(
        make_op("phone-1", "phone", wall=10, fields={"title": "b", "done": True}),
        crash_before_outputs=True,
    )
    assert lost.status == "partial"
    worker.restart()

    again = worker.process(
        make_op("phone-1", "phone", wall=10, fields={"title": "b", "done": True})
    )

    assert again.status == "duplicate"
    assert again.state == lost.state
    assert worker.conflicts == [lost.conflict]


@pytest.mark.parametrize(
    "history",
    [
        [make_op("phone-1", "phone", wall=10)],
        [make_op("phone-1", "phone", wall=10), make_op("phone-2", "phone", wall=5)],
        [make_op("laptop-1", "laptop", wall=5), make_op("phone-1", "phone", wall=10)],
    ],
    ids=["applied", "stale-to-same-client", "won-over-other-client"],
)
def test_redelivered_op_without_a_conflict_emits_none(history: list[Op]) -> None:
    worker = Worker()
    for op in history:
        worker.process(op)
    emitted = list(worker.conflicts)
    worker.restart()

    again = worker.process(history[-1])

    assert again.status == "duplicate"
    assert again.conflict is None
    assert worker.conflicts == emitted


def test_conflict_memory_keeps_only_the_most_recent_conflicts() -> None:
    worker = Worker()
    worker.process(make_op("laptop-1", "laptop", wall=10_000))
    losers = [make_op(f"phone-{i}", "phone", wall=i + 1) for i in range(CONFLICT_MEMORY + 5)]
    for op in losers:
        worker.process(op, crash_before_outputs=True)
    stored = parse_stored(worker.table[KEY])
    assert [op_id for op_id, _ in stored.conflicts] == [op.op_id for op in losers[5:]]
    worker.restart()

    for op in losers:
        worker.process(op)

    assert conflict_ids(worker.conflicts) == [op.op_id for op in losers[5:]]


def test_remembered_conflicts_stay_out_of_the_published_state() -> None:
    worker = Worker()
    worker.process(make_op("laptop-1", "laptop", wall=20))
    out = worker.process(make_op("phone-1", "phone", wall=30, fields={"done": True}))
    worker.process(make_op("phone-2", "phone", wall=10))
    assert out.state is not None
    assert RECENT_CONFLICTS in orjson.loads(worker.table[KEY])
    for state in worker.states:
        doc = orjson.loads(state)
        assert RECENT_CONFLICTS not in doc
        assert "applied_op_ids" not in doc
        EntityRecord.from_dict(doc)  # a valid EntityState


def test_stored_record_round_trips_and_records_without_conflicts_still_load() -> None:
    worker = Worker()
    worker.process(make_op("laptop-1", "laptop", wall=20))
    worker.process(make_op("phone-1", "phone", wall=10))
    stored = parse_stored(worker.table[KEY])
    assert serialize_stored(stored.record, stored.conflicts) == worker.table[KEY]

    plain = orjson.dumps(stored.record.to_dict())  # what tables held before conflicts
    old = parse_stored(plain)
    assert old.record == stored.record
    assert old.conflicts == ()
    assert serialize_stored(old.record, ()) == plain
    assert public_state(old.record) == public_state(stored.record)


@pytest.mark.parametrize(
    "remembered",
    ["not a list", [1, 2], [{"no_op_id": True}]],
    ids=["string", "numbers", "no-op-id"],
)
def test_malformed_remembered_conflicts_are_an_input_error(remembered: Any) -> None:
    worker = Worker()
    worker.process(make_op("phone-1", "phone", wall=10))
    doc = orjson.loads(worker.table[KEY])
    doc[RECENT_CONFLICTS] = remembered
    with pytest.raises(LwwInputError, match=RECENT_CONFLICTS):
        parse_stored(orjson.dumps(doc))


ops_strategy = st.lists(
    st.tuples(
        st.sampled_from(["phone", "laptop", "tablet"]),
        st.integers(min_value=1, max_value=40),
        st.sampled_from(["title", "done", "prio"]),
        st.booleans(),  # a delete instead of an upsert
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(ops=ops_strategy, crashes=st.lists(st.integers(min_value=0, max_value=24), max_size=4))
def test_crashes_between_table_and_outputs_lose_no_conflict_and_no_state(
    ops: list[tuple[str, int, str, bool]], crashes: list[int]
) -> None:
    """Kill the worker after the table write of some ops; on restart it re-reads the log
    from the last op whose outputs were all produced (the committed offset). The conflicts
    seen, deduplicated by op_id, and the last state equal those of a run without crashes."""
    log = [
        make_op(f"{client}-{i}", client, wall, kind="delete" if delete else "upsert")
        if delete
        else make_op(f"{client}-{i}", client, wall, fields={name: i})
        for i, (client, wall, name, delete) in enumerate(ops)
    ]
    clean = Worker()
    for op in log:
        clean.process(op)

    worker = Worker()
    committed = 0
    for crash_at in sorted(set(crashes)):
        if crash_at < committed or crash_at >= len(log):
            continue
        for op in log[committed:crash_at]:
            worker.process(op)
        worker.process(log[crash_at], crash_before_outputs=True)
        committed = crash_at - min(crash_at, 2)  # the commit lags a little behind
        worker.restart()
    for op in log[committed:]:
        worker.process(op)

    def by_op_id(conflicts: list[bytes]) -> dict[str, bytes]:
        return {orjson.loads(c)["op_id"]: c for c in conflicts}

    assert by_op_id(worker.conflicts) == by_op_id(clean.conflicts)
    assert worker.table == clean.table
    assert worker.states[-1] == clean.states[-1]
