"""push/records.py: records are decoded and checked against the contract, or refused."""

from __future__ import annotations

import orjson
import pytest

from push.records import RecordError, decode_conflict, decode_entity, decode_receipt
from tests.push.records import conflict, entity_key, receipt, state, state_doc


def test_decode_entity_keeps_raw_json_and_routing_fields() -> None:
    raw = state("e/1", 3, received_at_ms=123)
    ev = decode_entity(entity_key("e/1"), raw)
    assert (ev.tenant, ev.collection, ev.entity_id, ev.version) == ("acme", "tasks", "e/1", 3)
    assert ev.key == "acme/tasks/e/1"
    assert ev.received_at_ms == 123
    assert ev.raw is raw


BAD_ENTITIES = {
    "no-key": (None, state("e1"), "no_key"),
    "tombstone": (entity_key("e1"), None, "tombstone"),
    "not-json": (entity_key("e1"), b"{nope", "schema"),
    "schema": (entity_key("e1"), orjson.dumps({**state_doc("e1"), "version": 0}), "schema"),
    "extra": (entity_key("e1"), orjson.dumps({**state_doc("e1"), "x": 1}), "schema"),
    "bad-key": (b"acme/tasks", state("e1"), "bad_key"),
    "other-tenant": (entity_key("e1", tenant="evil"), state("e1"), "key_mismatch"),
    "binary-key": (b"\xff\xfe", state("e1"), "bad_key"),
}


@pytest.mark.parametrize(("key", "value", "reason"), BAD_ENTITIES.values(), ids=BAD_ENTITIES.keys())
def test_decode_entity_refuses_with_reason(
    key: bytes | None, value: bytes | None, reason: str
) -> None:
    with pytest.raises(RecordError) as err:
        decode_entity(key, value)
    assert err.value.reason == reason


def test_decode_receipt_and_conflict_route_by_author() -> None:
    r = decode_receipt(b"acme/dev-1", receipt("op-1", user_id="bob"))
    assert (r.kind, r.tenant, r.client_id, r.user_id) == ("receipt", "acme", "dev-1", "bob")
    c = decode_conflict(b"acme/tasks/e1", conflict("op-2"))
    assert (c.kind, c.client_id, c.user_id) == ("conflict", "dev-1", "alice")


@pytest.mark.parametrize(
    ("decode", "key", "value", "reason"),
    [
        (decode_receipt, b"acme/dev-2", receipt("op-1"), "key_mismatch"),
        (decode_receipt, b"acme/dev-1", b"[]", "schema"),
        (decode_conflict, b"acme/tasks/e2", conflict("op-1"), "key_mismatch"),
        (decode_conflict, None, conflict("op-1"), "no_key"),
    ],
    ids=["receipt-key", "receipt-schema", "conflict-key", "conflict-no-key"],
)
def test_decode_client_events_refuse_with_reason(
    decode: object, key: bytes | None, value: bytes, reason: str
) -> None:
    with pytest.raises(RecordError) as err:
        decode(key, value)  # type: ignore[operator]
    assert err.value.reason == reason
