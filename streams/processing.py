"""One op record in, the records to produce out: the reconcile step without Faust.

The ``reconcile`` agent and the replay tools both call :class:`Reconciler`, so a replay
reproduces exactly what the worker does. It decodes the raw record, rejects what cannot
be decoded or validated (the caller parks it on ``ops.dlq``), folds the op into the
entity's stored record with :func:`streams.lww.apply` and serializes the outputs::

    (key, value) ──decode──► Op ──apply(stored record)──► Outcome
         │ not JSON / bad shape / key mismatch                 ├─ record to store (if it changed)
         ▼                                                     ├─ state   → entities (if changed)
      Rejection ──► ops.dlq                                    ├─ conflict → conflicts (if any)
                                                               └─ receipt → receipts (always)

A re-delivered op is a ``duplicate`` and changes nothing in the table. Two exceptions
keep at-least-once whole, since a worker killed between writing its table and producing
the outputs leaves them unproduced and only the re-delivery can heal them:

- when the duplicate is the op that produced the entity's current state, that state is
  emitted again (consumers keep a version only if newer, so this is harmless);
- when the duplicate is an op whose conflict the entity still remembers, that conflict
  is emitted again, byte for byte (consumers dedupe conflicts by ``op_id``).

The stored record is therefore the EntityRecord JSON plus ``recent_conflicts``: the
conflicts of the entity's last :data:`CONFLICT_MEMORY` conflicting ops, oldest first.
It is never published (states are :func:`streams.lww.public_state`), and
:func:`streams.lww.apply` stays unaware of it: LWW itself reports a conflict once.
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import orjson

from schemas.generated.dlq_record_schema import DlqRecord
from schemas.topics import TopicError, entity_key, receipt_key
from streams.lww import EntityRecord, LwwInputError, Op, apply, public_state
from streams.lww_types import Status

RejectKind = Literal["not_json", "bad_shape", "bad_key", "empty"]
REJECT_KINDS: Final[tuple[RejectKind, ...]] = ("not_json", "bad_shape", "bad_key", "empty")

_CACHE_SIZE: Final = 50_000

CONFLICT_MEMORY: Final = 32
"""How many recent conflicts each stored record keeps to re-emit for re-delivered ops."""

RECENT_CONFLICTS: Final = "recent_conflicts"
"""The key of the remembered conflicts in a stored record (absent when there are none)."""

Remembered = tuple[tuple[str, bytes], ...]
"""(op_id, conflict JSON) of an entity's recent conflicts, oldest first."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record that cannot be reconciled: park it on the DLQ with this reason."""

    kind: RejectKind
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one op did, serialized for the output topics and the table."""

    key: bytes
    record: EntityRecord | None
    stored: bytes | None
    """The record to write to the table, or None when the table stays as it is."""
    state: bytes | None
    conflict: bytes | None
    receipt_key: bytes
    receipt: bytes
    status: Status
    changed: bool
    received_at_ms: int


def dumps(value: object) -> bytes:
    return orjson.dumps(value)


def decode(key: bytes | None, value: bytes | None) -> Op | Rejection:
    """Parse an ops record; a :class:`Rejection` says why it cannot be reconciled."""
    if value is None:
        return Rejection("empty", "record has no value (a tombstone); ops are never deleted")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Rejection("not_json", f"value is not UTF-8 JSON: {exc}")
    try:
        op = Op.from_dict(data)
    except LwwInputError as exc:
        return Rejection("bad_shape", f"value is not an op record: {exc}")
    try:
        expected = entity_key(op.tenant, op.collection, op.entity_id)
        receipt_key(op.tenant, op.client_id)
    except TopicError as exc:
        return Rejection("bad_key", f"op {op.op_id!r}: {exc}")
    got = None if key is None else key.decode("utf-8", "replace")
    if got != expected:
        return Rejection(
            "bad_key",
            f"record key {got!r} is not the entity key {expected!r} of op {op.op_id!r}; "
            "ops must be keyed by entity so each entity stays on one partition",
        )
    return op


def dlq_record(
    rejection: Rejection,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    now_ms: int | None = None,
) -> bytes:
    """The DlqRecord JSON for a rejected record."""
    record = DlqRecord(
        reason=rejection.reason,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        key=None if key is None else _key_text(key),
        value=None if value is None else base64.b64encode(value).decode("ascii"),
        failed_at_ms=int(time.time() * 1000) if now_ms is None else now_ms,
    )
    return record.model_dump_json().encode()


def _key_text(key: bytes) -> str:
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return key.decode("latin-1")


@dataclass(frozen=True, slots=True)
class Stored:
    """A stored record decoded: the entity and the conflicts it remembers."""

    record: EntityRecord
    conflicts: Remembered = ()

    def conflict_of(self, op_id: str) -> bytes | None:
        return next((c for o, c in self.conflicts if o == op_id), None)


def parse_stored(stored: bytes) -> Stored:
    """Decode a table record (EntityRecord JSON, optionally with ``recent_conflicts``)."""
    data = orjson.loads(stored)
    remembered = data.pop(RECENT_CONFLICTS, None) if isinstance(data, dict) else None
    record = EntityRecord.from_dict(data)
    if not remembered:
        return Stored(record)
    if not isinstance(remembered, list) or not all(
        isinstance(c, dict) and isinstance(c.get("op_id"), str) for c in remembered
    ):
        raise LwwInputError(f"entity record: {RECENT_CONFLICTS!r} must be a list of conflicts")
    return Stored(record, tuple((c["op_id"], dumps(c)) for c in remembered))


def serialize_stored(record: EntityRecord, conflicts: Remembered) -> bytes:
    """The table record: EntityRecord JSON, plus the remembered conflicts if any."""
    data = record.to_dict()
    if conflicts:
        data[RECENT_CONFLICTS] = [orjson.Fragment(c) for _, c in conflicts]
    return dumps(data)


class Reconciler:
    """Applies ops to stored records, keeping decoded records to skip re-parsing.

    The table holds record JSON; parsing it for every op would dominate the cost, so the
    last decoded record per key is kept with the exact bytes it came from and reused only
    while the table still holds those very bytes.
    """

    def __init__(self, cache_size: int = _CACHE_SIZE) -> None:
        self._cache: OrderedDict[bytes, tuple[bytes, Stored]] = OrderedDict()
        self._cache_size = cache_size

    def load(self, key: bytes, stored: bytes | None) -> EntityRecord | None:
        found = self._load(key, stored)
        return None if found is None else found.record

    def _load(self, key: bytes, stored: bytes | None) -> Stored | None:
        if stored is None:
            return None
        hit = self._cache.get(key)
        if hit is not None and hit[0] is stored:
            return hit[1]
        decoded = parse_stored(stored)
        self._remember(key, stored, decoded)
        return decoded

    def _remember(self, key: bytes, stored: bytes, decoded: Stored) -> None:
        self._cache[key] = (stored, decoded)
        self._cache.move_to_end(key)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def reconcile(self, op: Op, get_stored: Callable[[bytes], bytes | None]) -> Outcome:
        key = entity_key(op.tenant, op.collection, op.entity_id).encode()
        held = self._load(key, get_stored(key))
        before = None if held is None else held.record
        remembered = () if held is None else held.conflicts
        result = apply(before, op)
        record = result.record
        status = result.receipt.status
        conflict = None if result.conflict is None else dumps(result.conflict.to_dict())
        if conflict is not None:
            remembered = (*remembered, (op.op_id, conflict))[-CONFLICT_MEMORY:]
        stored: bytes | None = None
        if record is not None and record is not before:
            stored = serialize_stored(record, remembered)
            self._remember(key, stored, Stored(record, remembered))
        state: bytes | None = None
        if status == "duplicate" and held is not None:
            # Heal what a worker killed after writing its table may not have produced.
            if record is not None and record.last_op_id == op.op_id:
                state = dumps(public_state(record))
            conflict = held.conflict_of(op.op_id)
        elif record is not None and result.changed:
            state = dumps(public_state(record))
        return Outcome(
            key=key,
            record=record,
            stored=stored,
            state=state,
            conflict=conflict,
            receipt_key=receipt_key(op.tenant, op.client_id).encode(),
            receipt=dumps(result.receipt.to_dict()),
            status=status,
            changed=result.changed,
            received_at_ms=op.received_at_ms,
        )
