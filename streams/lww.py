"""Last-writer-wins reconciliation of one entity: pure functions on plain data.

``apply(record, op)`` folds one op into the stored record of its entity and says what
happened. No Faust, no I/O: the ``reconcile`` agent calls it and produces the result.
The shared vectors in ``schemas/vectors/lww.json`` pin the behaviour for every
implementation (this one and the PWA's).

State per entity: one register ``{value, hlc, client_id, op_id}`` per field, plus the
winning delete ``(deleted_hlc, deleted_by, deleted_op_id)``. HLCs compare as strings
(their order is causal order, the node breaking ties). A write replaces what is there
only if its HLC is strictly greater, so of two writes with equal HLCs (a client that
reused a timestamp) the first to arrive stays::

    op ──► invalid? ──yes──► invalid   (no change, not remembered)
             │ no
             ▼
           seen op_id? ──yes──► duplicate   (no change)
             │ no
             ▼
    upsert, per field f (hlc h):                delete (hlc h):
      h <= deleted_hlc        → f lost (delete)   h <= deleted_hlc → stale
      no register or h > reg  → f won             otherwise        → deleted_hlc = h,
      otherwise               → f lost (reg)        drop registers older than h;
    all won → applied                               the rest survive (lost_fields)
    some    → partial                             none survive → applied
    none    → stale                               some survive → partial

    absent ──upsert/delete──► present (version 1)
    present: applied/partial ──► version + 1; stale/duplicate/invalid ──► version kept
    deleted (flag) ⇔ deleted_hlc set and no fields left; a newer upsert clears it

Merged content (registers and the winning delete) is a function of the set of ops seen,
whatever their order: the winning delete is the greatest delete, and a field holds its
greatest write if that is newer than the winning delete. ``version``, receipts and
conflicts depend on arrival order. An op conflicts when something it wrote lost to a
write by another client; a delete that loses to a newer delete never conflicts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, Final

from schemas.hlc import Hlc, HlcError
from streams.lww_types import (
    ApplyResult,
    Conflict,
    ConflictField,
    ConflictWinner,
    ConflictYours,
    EntityRecord,
    LwwInputError,
    Op,
    Receipt,
    Register,
    Status,
)

__all__ = [
    "DEDUPE_WINDOW",
    "ApplyResult",
    "Conflict",
    "ConflictField",
    "ConflictWinner",
    "ConflictYours",
    "EntityRecord",
    "LwwInputError",
    "Op",
    "Receipt",
    "Register",
    "apply",
    "content",
    "public_state",
]

DEDUPE_WINDOW: Final = 256
"""How many recent op ids each entity remembers to detect re-delivered ops."""

_Deletion = tuple[str, str, str] | None  # (deleted_hlc, deleted_by, deleted_op_id)


def apply(record: EntityRecord | None, op: Op) -> ApplyResult:
    """Fold ``op`` into ``record`` (None if the entity does not exist yet).

    Never raises for an op that breaks the LWW invariants: it gets an ``invalid`` receipt.
    Inputs are not modified; an unchanged record is returned as the same object.
    """
    reason = _invalid_reason(record, op)
    if reason is not None:
        version = None if record is None else record.version
        return ApplyResult(record, _receipt(op, "invalid", version, (), reason), None, False)
    if record is not None and _seen(record, op.op_id):
        return ApplyResult(record, _receipt(op, "duplicate", record.version), None, False)
    if op.kind == "upsert":
        return _apply_upsert(record, op)
    return _apply_delete(record, op)


def public_state(record: EntityRecord) -> dict[str, Any]:
    """The EntityState JSON: the record without its dedupe bookkeeping."""
    state = record.to_dict()
    del state["applied_op_ids"]
    return state


def content(record: EntityRecord | None) -> dict[str, Any] | None:
    """Fields and deletion only: what every arrival order of the same ops agrees on."""
    if record is None:
        return None
    return {
        "fields": {name: reg.to_dict() for name, reg in sorted(record.fields.items())},
        "deleted_hlc": record.deleted_hlc,
        "deleted_by": record.deleted_by,
        "deleted_op_id": record.deleted_op_id,
    }


def _invalid_reason(record: EntityRecord | None, op: Op) -> str | None:
    prefix = f"op {op.op_id!r} rejected:"
    try:
        node = Hlc.parse(op.hlc).node
    except HlcError as exc:
        return f"{prefix} {exc}; stamp every op with the client's HLC"
    if node != op.client_id:
        return (
            f"{prefix} hlc node {node!r} is not the client_id {op.client_id!r}; "
            "stamp ops with an HLC whose node is the authoring client's id"
        )
    if op.kind == "upsert" and not op.fields:
        return (
            f"{prefix} upsert sets no fields; send at least one field, "
            "or kind 'delete' to delete the entity"
        )
    if op.kind == "delete" and op.fields is not None:
        return f"{prefix} delete carries fields; omit 'fields' (or send null) for a delete"
    if record is not None:
        target = (op.tenant, op.collection, op.entity_id)
        stored = (record.tenant, record.collection, record.entity_id)
        if target != stored:
            return (
                f"{prefix} it targets {'/'.join(target)!r} but was applied to entity "
                f"{'/'.join(stored)!r}; key ops by {{tenant}}/{{collection}}/{{entity_id}}"
            )
    return None


def _seen(record: EntityRecord, op_id: str) -> bool:
    return (
        op_id in record.applied_op_ids
        or op_id == record.deleted_op_id
        or any(reg.op_id == op_id for reg in record.fields.values())
    )


def _apply_upsert(record: EntityRecord | None, op: Op) -> ApplyResult:
    writes = op.fields or {}  # non-empty: checked by _invalid_reason
    fields = {} if record is None else dict(record.fields)
    deletion = _deletion_of(record)
    won: list[str] = []
    lost: list[str] = []
    conflicts: dict[str, ConflictField] = {}
    for name, value in writes.items():
        yours = ConflictYours(value, op.hlc, False)
        current = fields.get(name)
        if deletion is not None and op.hlc <= deletion[0]:
            # Older than the winning delete: lost to it, whatever register exists.
            lost.append(name)
            deleted_hlc, deleted_by, deleted_op_id = deletion
            if deleted_by != op.client_id:
                winner = ConflictWinner(None, deleted_hlc, deleted_by, deleted_op_id, True)
                conflicts[name] = ConflictField(yours, winner)
        elif current is None or op.hlc > current.hlc:
            fields[name] = Register(value, op.hlc, op.client_id, op.op_id)
            won.append(name)
        else:
            lost.append(name)
            if current.client_id != op.client_id:
                conflicts[name] = ConflictField(yours, _winner_of(current))
    status: Status = "applied" if not lost else "partial" if won else "stale"
    return _result(record, op, status, lost, conflicts, fields, deletion, changed=bool(won))


def _apply_delete(record: EntityRecord | None, op: Op) -> ApplyResult:
    deletion = _deletion_of(record)
    fields = {} if record is None else dict(record.fields)
    if deletion is not None and op.hlc <= deletion[0]:
        # Lost to a delete at least as new, which did what this one asked: never a conflict.
        return _result(record, op, "stale", fields, {}, fields, deletion, changed=False)
    # Only strictly older registers go: an equal hlc (a reused timestamp) keeps what is there.
    survivors = {name: reg for name, reg in fields.items() if reg.hlc >= op.hlc}
    yours = ConflictYours(None, op.hlc, True)
    conflicts = {
        name: ConflictField(yours, _winner_of(reg))
        for name, reg in survivors.items()
        if reg.client_id != op.client_id
    }
    status: Status = "partial" if survivors else "applied"
    new_deletion = (op.hlc, op.client_id, op.op_id)
    return _result(record, op, status, survivors, conflicts, survivors, new_deletion, changed=True)


def _result(
    record: EntityRecord | None,
    op: Op,
    status: Status,
    lost: Iterable[str],
    conflicts: dict[str, ConflictField],
    fields: dict[str, Register],
    deletion: _Deletion,
    *,
    changed: bool,
) -> ApplyResult:
    previous = () if record is None else record.applied_op_ids
    applied_op_ids = (*previous, op.op_id)[-DEDUPE_WINDOW:]
    if record is None or changed:
        deleted_hlc, deleted_by, deleted_op_id = deletion or (None, None, None)
        record = EntityRecord(
            tenant=op.tenant,
            collection=op.collection,
            entity_id=op.entity_id,
            version=1 if record is None else record.version + 1,
            fields=fields,
            deleted_hlc=deleted_hlc,
            deleted_by=deleted_by,
            deleted_op_id=deleted_op_id,
            last_op_id=op.op_id,
            received_at_ms=op.received_at_ms,
            applied_op_ids=applied_op_ids,
        )
    else:
        record = replace(record, applied_op_ids=applied_op_ids)
    lost_fields = tuple(sorted(lost))
    conflict = _conflict(op, record.version, conflicts) if conflicts else None
    receipt = _receipt(op, status, record.version, lost_fields)
    return ApplyResult(record, receipt, conflict, changed)


def _deletion_of(record: EntityRecord | None) -> _Deletion:
    # EntityRecord guarantees the three deletion fields are all set or all None.
    if record is None or record.deleted_hlc is None:
        return None
    return record.deleted_hlc, record.deleted_by or "", record.deleted_op_id or ""


def _winner_of(reg: Register) -> ConflictWinner:
    return ConflictWinner(reg.value, reg.hlc, reg.client_id, reg.op_id, False)


def _receipt(
    op: Op,
    status: Status,
    version: int | None,
    lost_fields: tuple[str, ...] = (),
    reason: str | None = None,
) -> Receipt:
    return Receipt(
        op_id=op.op_id,
        tenant=op.tenant,
        client_id=op.client_id,
        user_id=op.user_id,
        collection=op.collection,
        entity_id=op.entity_id,
        kind=op.kind,
        hlc=op.hlc,
        status=status,
        version=version,
        lost_fields=lost_fields,
        reason=reason,
        received_at_ms=op.received_at_ms,
    )


def _conflict(op: Op, version: int, fields: dict[str, ConflictField]) -> Conflict:
    return Conflict(
        op_id=op.op_id,
        tenant=op.tenant,
        client_id=op.client_id,
        user_id=op.user_id,
        collection=op.collection,
        entity_id=op.entity_id,
        kind=op.kind,
        hlc=op.hlc,
        version=version,
        received_at_ms=op.received_at_ms,
        fields=fields,
    )
