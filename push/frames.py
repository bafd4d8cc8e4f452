"""Server frames built with orjson on the hot path.

Each function returns the JSON of one server message of ``schemas/json/push.schema.json``
(tests validate every one against the generated models). Record payloads (entity state,
conflict, receipt JSON) were validated when consumed and are embedded as they are, so a
log event is serialized once and the same bytes go to every subscriber.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import orjson

from schemas.messages import PROTOCOL_VERSION

PONG: Final = b'{"type":"pong"}'


def entity(state_json: bytes, cursor: str) -> bytes:
    return b'{"type":"entity","state":' + state_json + b',"cursor":' + orjson.dumps(cursor) + b"}"


def conflict(conflict_json: bytes) -> bytes:
    return b'{"type":"conflict","conflict":' + conflict_json + b"}"


def receipt(receipt_json: bytes) -> bytes:
    return b'{"type":"receipt","receipt":' + receipt_json + b"}"


def snapshot(collection: str, states: Iterable[bytes], cursor: str, *, resumed: bool) -> bytes:
    return orjson.dumps(
        {
            "type": "snapshot",
            "collection": collection,
            "entities": [orjson.Fragment(s) for s in states],
            "cursor": cursor,
            "resumed": resumed,
        }
    )


def hello(app_version: str, server_hlc: str, limits: dict[str, int | float]) -> bytes:
    return orjson.dumps(
        {
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "app_version": app_version,
            "server_hlc": server_hlc,
            "limits": limits,
        }
    )


def error(code: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "code": code, "message": message})


def disconnect_notice(reason: str, retry_after_ms: int, cursor: str | None) -> bytes:
    return orjson.dumps(
        {
            "type": "disconnect_notice",
            "reason": reason,
            "retry_after_ms": retry_after_ms,
            "cursor": cursor,
        }
    )
