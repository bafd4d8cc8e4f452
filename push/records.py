"""Decoding log records (entities, conflicts, receipts) into events the hub routes.

Pure functions: a record that is not what the contract says raises :class:`RecordError`
with a bounded ``reason`` (a metric label); the source counts it and moves on, so a bad
record never stops the service. Values are validated against the generated models once
per record, then their original JSON is forwarded unchanged to every subscriber.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from schemas.generated.conflict_schema import Conflict
from schemas.generated.entity_state_schema import EntityState
from schemas.generated.receipt_schema import Receipt
from schemas.topics import TopicError, entity_key, parse_entity_key, receipt_key


class RecordError(ValueError):
    """A record that breaks the contract; ``reason`` is a short metric label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EntityEvent:
    """An accepted entity state from the ``entities`` topic."""

    tenant: str
    collection: str
    entity_id: str
    key: str  # '{tenant}/{collection}/{entity_id}', the conflation key
    version: int
    received_at_ms: int
    raw: bytes  # EntityState JSON


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """A conflict or receipt, for the connections of the client that authored the op."""

    kind: str  # 'conflict' | 'receipt'
    tenant: str
    client_id: str
    user_id: str
    received_at_ms: int
    raw: bytes


def _text_key(key: bytes | None) -> str:
    if key is None:
        raise RecordError("no_key", "record has no key")
    try:
        return key.decode()
    except UnicodeDecodeError as exc:
        raise RecordError("bad_key", "key is not UTF-8") from exc


def _value(value: bytes | None) -> bytes:
    if value is None:
        raise RecordError("tombstone", "record has no value")
    return value


def decode_entity(key: bytes | None, value: bytes | None) -> EntityEvent:
    text_key = _text_key(key)
    try:
        parts = parse_entity_key(text_key)
        state = EntityState.model_validate_json(_value(value))
    except TopicError as exc:
        raise RecordError("bad_key", str(exc)) from exc
    except ValidationError as exc:
        raise RecordError("schema", str(exc.errors()[:1])) from exc
    if (parts.tenant, parts.collection, parts.entity_id) != (
        state.tenant,
        state.collection,
        state.entity_id,
    ):
        raise RecordError("key_mismatch", f"key {text_key!r} does not match the state")
    assert value is not None
    return EntityEvent(
        tenant=state.tenant,
        collection=state.collection,
        entity_id=state.entity_id,
        key=text_key,
        version=state.version,
        received_at_ms=state.received_at_ms,
        raw=value,
    )


def decode_conflict(key: bytes | None, value: bytes | None) -> ClientEvent:
    text_key = _text_key(key)
    try:
        c = Conflict.model_validate_json(_value(value))
        expected = entity_key(c.tenant, c.collection, c.entity_id)
    except ValidationError as exc:
        raise RecordError("schema", str(exc.errors()[:1])) from exc
    except TopicError as exc:
        raise RecordError("bad_key", str(exc)) from exc
    if text_key != expected:
        raise RecordError("key_mismatch", f"key {text_key!r} is not {expected!r}")
    assert value is not None
    return ClientEvent("conflict", c.tenant, c.client_id, c.user_id, c.received_at_ms, value)


def decode_receipt(key: bytes | None, value: bytes | None) -> ClientEvent:
    text_key = _text_key(key)
    try:
        r = Receipt.model_validate_json(_value(value))
        expected = receipt_key(r.tenant, r.client_id)
    except ValidationError as exc:
        raise RecordError("schema", str(exc.errors()[:1])) from exc
    except TopicError as exc:
        raise RecordError("bad_key", str(exc)) from exc
    if text_key != expected:
        raise RecordError("key_mismatch", f"key {text_key!r} is not {expected!r}")
    assert value is not None
    return ClientEvent("receipt", r.tenant, r.client_id, r.user_id, r.received_at_ms, value)
