"""Builders of contract-valid records (EntityState, Conflict, Receipt JSON) for push tests."""

from __future__ import annotations

from typing import Any

import orjson


def hlc(wall_ms: int, node: str = "dev-1", counter: int = 0) -> str:
    return f"{wall_ms:015d}-{counter:04x}-{node}"


def state_doc(
    entity_id: str,
    version: int = 1,
    *,
    tenant: str = "acme",
    collection: str = "tasks",
    received_at_ms: int = 1_700_000_000_000,
    title: str = "t",
    client_id: str = "dev-1",
    pad: int = 0,
) -> dict[str, Any]:
    op_id = f"op-{entity_id.replace('/', '_')}-{version}"
    fields: dict[str, Any] = {
        "title": {
            "value": title + ("x" * pad),
            "hlc": hlc(received_at_ms, client_id),
            "client_id": client_id,
            "op_id": op_id,
        }
    }
    return {
        "tenant": tenant,
        "collection": collection,
        "entity_id": entity_id,
        "version": version,
        "fields": fields,
        "deleted_hlc": None,
        "deleted_by": None,
        "deleted_op_id": None,
        "deleted": False,
        "last_op_id": op_id,
        "received_at_ms": received_at_ms,
    }


def state(entity_id: str, version: int = 1, **kw: Any) -> bytes:
    return orjson.dumps(state_doc(entity_id, version, **kw))


def entity_key(entity_id: str, tenant: str = "acme", collection: str = "tasks") -> bytes:
    return f"{tenant}/{collection}/{entity_id}".encode()


def receipt_doc(
    op_id: str,
    *,
    tenant: str = "acme",
    client_id: str = "dev-1",
    user_id: str = "alice",
    collection: str = "tasks",
    entity_id: str = "e1",
    received_at_ms: int = 1_700_000_000_000,
) -> dict[str, Any]:
    return {
        "op_id": op_id,
        "tenant": tenant,
        "client_id": client_id,
        "user_id": user_id,
        "collection": collection,
        "entity_id": entity_id,
        "kind": "upsert",
        "hlc": hlc(received_at_ms, client_id),
        "status": "applied",
        "version": 1,
        "lost_fields": [],
        "reason": None,
        "received_at_ms": received_at_ms,
    }


def receipt(op_id: str, **kw: Any) -> bytes:
    return orjson.dumps(receipt_doc(op_id, **kw))


def conflict_doc(
    op_id: str,
    *,
    tenant: str = "acme",
    client_id: str = "dev-1",
    user_id: str = "alice",
    collection: str = "tasks",
    entity_id: str = "e1",
    received_at_ms: int = 1_700_000_000_000,
) -> dict[str, Any]:
    return {
        "op_id": op_id,
        "tenant": tenant,
        "client_id": client_id,
        "user_id": user_id,
        "collection": collection,
        "entity_id": entity_id,
        "kind": "upsert",
        "hlc": hlc(received_at_ms - 5, client_id),
        "version": 2,
        "received_at_ms": received_at_ms,
        "fields": {
            "title": {
                "yours": {
                    "value": "mine",
                    "hlc": hlc(received_at_ms - 5, client_id),
                    "deleted": False,
                },
                "winner": {
                    "value": "theirs",
                    "hlc": hlc(received_at_ms, "dev-2"),
                    "client_id": "dev-2",
                    "op_id": "op-w",
                    "deleted": False,
                },
            }
        },
    }


def conflict(op_id: str, **kw: Any) -> bytes:
    return orjson.dumps(conflict_doc(op_id, **kw))
