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

A re-delivered op is a ``duplicate`` and changes nothing. One exception keeps
at-least-once whole: when the duplicate is the op that produced the entity's current
state, that state is emitted again, since a worker killed between writing its table
and producing the state leaves the state unproduced and only this re-delivery can heal
it. Re-emitting the same version is harmless (consumers keep a version only if newer).
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


class Reconciler:
    """Applies ops to stored records, keeping decoded records to skip re-parsing.

    The table holds record JSON; parsing it for every op would dominate the cost, so the
    last decoded record per key is kept with the exact bytes it came from and reused only
    while the table still holds those very bytes.
    """

    def __init__(self, cache_size: int = _CACHE_SIZE) -> None:
        self._cache: OrderedDict[bytes, tuple[bytes, EntityRecord]] = OrderedDict()
        self._cache_size = cache_size

    def load(self, key: bytes, stored: bytes | None) -> EntityRecord | None:
        if stored is None:
            return None
        hit = self._cache.get(key)
        if hit is not None and hit[0] is stored:
            return hit[1]
        record = EntityRecord.from_dict(orjson.loads(stored))
        self._remember(key, stored, record)
        return record

    def _remember(self, key: bytes, stored: bytes, record: EntityRecord) -> None:
        self._cache[key] = (stored, record)
        self._cache.move_to_end(key)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def reconcile(self, op: Op, get_stored: Callable[[bytes], bytes | None]) -> Outcome:
        key = entity_key(op.tenant, op.collection, op.entity_id).encode()
        before = self.load(key, get_stored(key))
        result = apply(before, op)
        record = result.record
        stored: bytes | None = None
        if record is not None and record is not before:
            stored = dumps(record.to_dict())
            self._remember(key, stored, record)
        state: bytes | None = None
        status = result.receipt.status
        heal = status == "duplicate" and record is not None and record.last_op_id == op.op_id
        if record is not None and (result.changed or heal):
            state = dumps(public_state(record))
        return Outcome(
            key=key,
            record=record,
            stored=stored,
            state=state,
            conflict=None if result.conflict is None else dumps(result.conflict.to_dict()),
            receipt_key=receipt_key(op.tenant, op.client_id).encode(),
            receipt=dumps(result.receipt.to_dict()),
            status=status,
            changed=result.changed,
            received_at_ms=op.received_at_ms,
        )
